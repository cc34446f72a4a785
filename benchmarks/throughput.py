"""Training and sampling throughput of the ANODE flow, as a fraction of the GEMM peak.

One run measures, on this machine and in this order:

1. the fp32 GEMM peak: GFLOP/s of numpy ``a @ b`` on square float32 matrices
   (n = 2048, 2 n^3 FLOP per product), repeated for ~2.5 s, best of 3 rounds;
2. training throughput of the ANODE configuration (conditional MAF, 4 features,
   1 condition, 15 MADE blocks of 2 hidden layers x 128 ReLU units) through the
   package's own ``build_train_step``, per batch size, with and without XLA;
3. sampling throughput of the same model through ``draw_samples``, one batch of
   SAMPLE_BATCH conditions per call;
4. the peak resident memory of the process (``ru_maxrss``, MB = 2^20 bytes).

Cost model (dense matmul FLOPs only; biases, activations, masks, tanh and the
bijector arithmetic are O(width) per event and left out). With D features,
C conditions, hidden width H and B blocks, one MADE forward pass costs

    F_made = 2 * (D*H + C*H + H*H + H*2D)   FLOP/event

(input, condition, hidden and fused shift/log-scale output kernels). The script
takes it from the rank-2 variables of the real model. For ANODE (D=4, C=1,
H=128, B=15): F_made = 2 * 18,048 = 36,096 and the forward pass of all MADEs is
B * F_made = 541,440 FLOP/event.

* Training: the log-density runs each MADE once per block (the inverse
  direction), and the backward pass costs about twice the forward pass, so
  3 * B * F_made = 1,624,320 FLOP/event/step (~1.6 MFLOP).
* Sampling: the forward direction of a MAF is autoregressive and runs each MADE
  D times per block, so D * B * F_made = 2,165,760 FLOP/event.

GFLOP/s = events/s * FLOP/event / 1e9, reported with its percentage of the GEMM
peak. Each configuration is warmed up first (tracing / XLA compilation), then
timed over a fixed wall-clock window of ``--seconds``, synchronised by fetching
the last result. Input batches are built as tensors beforehand and rotated, so
host-to-tensor conversion is not timed. The data are random (x ~ N(0, 1),
c ~ U(3, 4)); their values do not change the cost. ``--threads N`` limits both
TensorFlow (intra- and inter-op pools) and numpy's BLAS to N threads, so the
peak and the flow figures use the same cores.

    python benchmarks/throughput.py --seconds 10 --json throughput.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from anode import anode_flow, anode_step, lhco_like
from threadpoolctl import threadpool_limits

from fedhex_hpc._tf import tf
from fedhex_hpc.flows import FlowModel
from fedhex_hpc.studies.steps.sample import SAMPLE_BATCH, draw_samples

GEMM_N = 2048
GEMM_ROUND_SECONDS = 2.5
GEMM_ROUNDS = 3
N_ROTATING_BATCHES = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timed window per configuration"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="threads for TF and BLAS (0 = library default)"
    )
    parser.add_argument(
        "--batches", default="256,4096", help="comma-separated training batch sizes"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def gemm_peak_gflops(n: int = GEMM_N) -> float:
    """Best-of-rounds fp32 GFLOP/s of numpy ``a @ b`` on (n, n) matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    started = time.perf_counter()
    a @ b  # warm-up, also calibrates the repetitions
    reps = max(1, round(GEMM_ROUND_SECONDS / (time.perf_counter() - started)))
    best = 0.0
    for _ in range(GEMM_ROUNDS):
        started = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, reps * 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def forward_flops_per_event(model: FlowModel) -> int:
    """Matmul FLOPs of one forward pass of every MADE, from the kernels' shapes."""
    return sum(
        2 * int(np.prod(v.shape))
        for made in model.mades
        for v in made.trainable_variables
        if v.shape.rank == 2
    )


def timed_calls(call: Callable[[int], object], seconds: float, warmup: int) -> tuple[int, float]:
    """Call ``call(i)`` ``warmup`` times, then for ``seconds``; return (calls, elapsed).

    ``call`` returns a tensor or an array; the last result is fetched to the host
    (``np.asarray``) before the clock stops, which waits for pending work.
    """
    for i in range(warmup):
        np.asarray(call(i))
    calls = 0
    started = time.perf_counter()
    while True:
        result = call(calls)
        calls += 1
        if time.perf_counter() - started >= seconds:
            break
    np.asarray(result)
    return calls, time.perf_counter() - started


def train_events_per_second(
    model: FlowModel, batch: int, jit: bool, seconds: float, rng: np.random.Generator
) -> float:
    """Training events/s of ``build_train_step`` at one batch size."""
    step, _ = anode_step(model, jit_compile=jit)
    batches = []
    for i in range(N_ROTATING_BATCHES):
        x, c = lhco_like(rng, batch)
        seed = tf.constant([1, i], tf.int64)
        batches.append((tf.constant(x), tf.constant(c), seed))

    def call(i: int) -> tf.Tensor:
        x, c, seed = batches[i % N_ROTATING_BATCHES]
        return step(x, c, None, seed)

    calls, elapsed = timed_calls(call, seconds, warmup=3)
    return calls * batch / elapsed


def sample_events_per_second(model: FlowModel, seconds: float, rng: np.random.Generator) -> float:
    """Sampling events/s of ``draw_samples``, one full batch of conditions per call."""
    _, cond = lhco_like(rng, SAMPLE_BATCH)
    calls, elapsed = timed_calls(
        lambda i: draw_samples(model, SAMPLE_BATCH, cond, seed=i), seconds, warmup=1
    )
    return calls * SAMPLE_BATCH / elapsed


def result_row(
    what: str, batch: int, jit: bool, events_per_s: float, flops_per_event: int, peak: float
) -> dict:
    """One table row: throughput in events/s and GFLOP/s, and the share of the peak."""
    gflops = events_per_s * flops_per_event / 1e9
    return {
        "what": what,
        "batch": batch,
        "jit": jit,
        "events_per_s": events_per_s,
        "flop_per_event": flops_per_event,
        "gflops": gflops,
        "percent_of_peak": 100 * gflops / peak,
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (2^20 bytes)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


def markdown_table(rows: list[dict]) -> str:
    """The results as a markdown table."""
    lines = [
        "| what | batch | jit | events/s | GFLOP/s | % of GEMM peak |",
        "|---|---:|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['what']} | {r['batch']:,} | {'yes' if r['jit'] else 'no'} "
        f"| {r['events_per_s']:,.0f} | {r['gflops']:.2f} | {r['percent_of_peak']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict:
    """Measure the GEMM peak before and after training and sampling; return all results.

    The peak is the better of the two GEMM measurements, so a burst of load from
    elsewhere during one of them does not inflate the fractions.
    """
    rng = np.random.default_rng(0)
    peak_before = gemm_peak_gflops()
    model = anode_flow(rng)
    forward = forward_flops_per_event(model)
    train_flops = 3 * forward
    sample_flops = model.spec.n_features * forward
    rates = [
        ("train", batch, jit, train_events_per_second(model, batch, jit, args.seconds, rng))
        for batch in (int(b) for b in args.batches.split(","))
        for jit in (False, True)
    ]
    rates.append(
        ("sample", SAMPLE_BATCH, False, sample_events_per_second(model, args.seconds, rng))
    )
    peak = max(peak_before, gemm_peak_gflops())
    rows = [
        result_row(what, batch, jit, rate, train_flops if what == "train" else sample_flops, peak)
        for what, batch, jit, rate in rates
    ]
    return {
        "gemm_n": GEMM_N,
        "gemm_peak_gflops": peak,
        "train_flop_per_event": train_flops,
        "sample_flop_per_event": sample_flops,
        "threads": args.threads,
        "seconds": args.seconds,
        "rows": rows,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and optionally write JSON."""
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    with threadpool_limits(limits=args.threads or None, user_api="blas"):
        results = run(args)
    print(markdown_table(results["rows"]))
    print()
    print(
        f"GEMM peak (numpy fp32, n={GEMM_N}): {results['gemm_peak_gflops']:.1f} GFLOP/s; "
        f"peak RSS: {results['peak_rss_mb']:.0f} MB; "
        f"FLOP/event: train step {results['train_flop_per_event']:,}, "
        f"sample {results['sample_flop_per_event']:,}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
