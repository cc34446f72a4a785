"""Likelihood throughput of ``fedhex infer``: −2 ln L + gradient evaluations per second, toys/min.

One run measures, on this machine and in this order:

1. the fp32 GEMM peak (numpy, as in ``throughput.py``; the better of a measurement
   before and one after the rest);
2. ``−2 ln L`` + gradient evaluations per second of the extended likelihood of
   cond/gauss_exp_bkg (parameters mass and norm) at 10^4, 10^5 and 10^6 events,
   with (a) the conditional flow of ``configs/infer/gauss_exp_bkg`` (3 rational-quadratic
   spline blocks of 16 bins, each MADE 2 x 32 ReLU units, 1 feature, 1 condition;
   untrained weights: the cost does not depend on them), one compiled TensorFlow call
   per evaluation with the
   gradient from ``tf.GradientTape``, and (b) the exact density (numpy/scipy,
   gradient by central differences);
3. a batched scan: 41 mass points x 10^4 events in one call, values only;
4. toys per minute: seeded 1000-event toys of the exact target, each fitted
   (MIGRAD, HESSE, MINOS 1σ and 2σ, the profile at the truth) with the exact
   density and with the flow.

Usage::

    python benchmarks/infer.py --seconds 5 --json infer.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import yaml
from threadpoolctl import threadpool_limits
from throughput import forward_flops_per_event, gemm_peak_gflops, timed_calls

from fedhex_hpc._tf import tf
from fedhex_hpc.config import parse_config, parse_section
from fedhex_hpc.flows import FlowModel, build_flow
from fedhex_hpc.infer import NLL, build_model
from fedhex_hpc.infer.density import FlowDensity, TargetDensity
from fedhex_hpc.infer.model import ModelSpec
from fedhex_hpc.infer.toys import draw_toy, toy_record
from fedhex_hpc.resources import resolve

EVENTS = (10_000, 100_000, 1_000_000)
SCAN_POINTS = 41
TARGET = "cond/gauss_exp_bkg"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window per row")
    parser.add_argument("--toys", type=int, default=20, help="exact-fit toys timed")
    parser.add_argument("--flow-toys", type=int, default=5, help="flow-fit toys timed")
    parser.add_argument("--threads", type=int, default=0, help="TF and BLAS threads (0: default)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def bundled_flow() -> FlowModel:
    """The architecture of ``configs/infer/gauss_exp_bkg`` with fresh weights."""
    config = parse_config(yaml.safe_load(resolve("config", "infer/gauss_exp_bkg").read_text()))
    density = TargetDensity(TARGET)
    x, c = density.target.sample(20_000, seed=1)
    return build_flow(config.flow, 1, x, c, density.feature_names, density.condition_names)


def models(flow: FlowModel):
    """The extended mass + norm model with the exact density and with ``flow``."""
    raw = {
        "processes": {
            "peak": {
                "target": TARGET,
                "events": 1000.0,
                "rates": ["norm"],
                "conditions": {"mass_true": "mass"},
            }
        }
    }
    exact = build_model(parse_section(ModelSpec, raw, ""))
    density = FlowDensity(flow, exact.processes[0].density.trained_range, "benchmark flow")
    with_flow = dataclasses.replace(
        exact, processes=[dataclasses.replace(exact.processes[0], density=density)]
    )
    return {"exact": exact, "flow": with_flow}


def evaluations_per_second(model, n: int, seconds: float) -> float:
    """``−2 ln L`` + gradient evaluations per second on ``n`` events."""
    x = TargetDensity(TARGET).sample(n, np.array([172.0]), seed=2)
    nll = NLL(model, x)
    rng = np.random.default_rng(3)
    points = np.stack([rng.uniform(168, 176, 64), rng.uniform(0.9, 1.1, 64)], axis=1)
    calls, elapsed = timed_calls(lambda i: nll.evaluate(points[i % 64], True)[1], seconds, 2)
    return calls / elapsed


def scan_rate(model, seconds: float) -> float:
    """Parameter points per second of a 41-point batched scan on 10^4 events."""
    x = TargetDensity(TARGET).sample(10_000, np.array([172.0]), seed=4)
    nll = NLL(model, x)
    grid = np.stack([np.linspace(168, 176, SCAN_POINTS), np.ones(SCAN_POINTS)], axis=1)
    calls, elapsed = timed_calls(lambda i: nll.evaluate(grid, False)[0], seconds, 1)
    return calls * SCAN_POINTS / elapsed


def toys_per_minute(model, toys: int) -> float:
    """Seeded 1000-event toys at mass 171 fitted per minute."""
    generator = TargetDensity(TARGET)
    started = time.perf_counter()
    for toy in range(toys):
        x = draw_toy(generator, np.array([171.0]), 1000.0, True, 1, 0, toy)
        toy_record(model, x, "mass", 171.0)
    return toys / (time.perf_counter() - started) * 60


def run(args: argparse.Namespace) -> dict:
    """All measurements (see the module docstring)."""
    peak_before = gemm_peak_gflops()
    flow = bundled_flow()
    built = models(flow)
    rows = []
    for name, model in built.items():
        for n in EVENTS:
            rate = evaluations_per_second(model, n, args.seconds)
            rows.append(
                {"density": name, "events": n, "evaluations_per_s": rate, "events_per_s": rate * n}
            )
    scans = {name: scan_rate(model, args.seconds) for name, model in built.items()}
    toys = {
        "exact": toys_per_minute(built["exact"], args.toys),
        "flow": toys_per_minute(built["flow"], args.flow_toys),
    }
    return {
        "gemm_peak_gflops": max(peak_before, gemm_peak_gflops()),
        "flow_forward_flop_per_event": forward_flops_per_event(flow),
        "threads": args.threads,
        "seconds": args.seconds,
        "rows": rows,
        "scan_points_per_s": scans,
        "toys_per_minute": toys,
        "toys_timed": {"exact": args.toys, "flow": args.flow_toys},
    }


def markdown(results: dict) -> str:
    """The README table."""
    lines = [
        "| density | events | −2lnL + gradient / s | events / s |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['density']} | {row['events']:,} | {row['evaluations_per_s']:.2f} | "
            f"{row['events_per_s']:.3g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the tables and optionally write JSON."""
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    with threadpool_limits(limits=args.threads or None, user_api="blas"):
        results = run(args)
    print(markdown(results))
    print()
    scans, toys = results["scan_points_per_s"], results["toys_per_minute"]
    print(
        f"batched scan ({SCAN_POINTS} points x 10^4 events per call, values only): "
        f"flow {scans['flow']:.1f}, exact {scans['exact']:.1f} points/s"
    )
    print(
        f"toys per minute (1000 events; MIGRAD, HESSE, MINOS 1σ+2σ, profile at the truth): "
        f"exact {toys['exact']:.1f} ({results['toys_timed']['exact']} toys), "
        f"flow {toys['flow']:.1f} ({results['toys_timed']['flow']} toys)"
    )
    print(
        f"GEMM peak (numpy fp32, n=2048): {results['gemm_peak_gflops']:.1f} GFLOP/s; "
        f"flow forward pass {results['flow_forward_flop_per_event']:,} FLOP/event"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
