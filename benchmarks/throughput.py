"""Training and sampling throughput of the ANODE flow, as a fraction of the GEMM peak.

One run measures, on this machine and in this order:

1. the fp32 GEMM peak: GFLOP/s of numpy ``a @ b`` on square float32 matrices
   (n = 2048, 2 n^3 FLOP per product), repeated for ~2.5 s, best of 3 rounds,
   once at the start and once at the end (the better one is the peak);
2. per batch size, with and without XLA (``train.jit_compile``):

   * step only: the package's compiled training steps (``build_train_steps``,
     as many steps per call as the trainer runs) on prebuilt tensors, in a child
     process whose thread pools and row parts (``train.shards``) are set up as
     ``fedhex train`` sets them;
   * end to end: ``fedhex train`` run as a subprocess on a generated file of
     ``--events`` events for eight epochs, the best events/s of epochs 2-8 from
     ``history.csv`` (an epoch's wall time: batching, copies, steps and
     validation; the first epoch also traces the step and is left out). The
     host is shared and its speed drifts within seconds, so the peak and this
     are both the best of several readings; the median of the epochs is printed
     and kept in the JSON as well;

3. sampling: ``FlowModel.sample_batched`` of ``--sample-events`` events, one
   condition row per event, with the pools and row parts of a training process;
4. memory: the peak resident memory (``ru_maxrss`` of the child, MB = 2^20 bytes)
   of one epoch of ``fedhex train`` streaming a converted dataset larger than
   its ``data.memory_budget_mb``, at two sizes, one 4x the other.

The model is the ANODE configuration (conditional MAF, 4 features, 1 condition,
15 MADE blocks of 2 hidden layers x 128 ReLU units, reverse permutations) with
standardising preprocessing; the data are random (x ~ N(0, 1), mjj ~ U(3, 4)),
whose values do not change the cost.

Cost model (dense matmul FLOPs only; biases, activations, masks, tanh and the
bijector arithmetic are O(width) per event and left out). With D features,
C conditions, hidden width H and B blocks, one MADE forward pass costs
``F_made = 2 * (D*H + C*H + H*H + H*2D)`` FLOP/event, taken from the rank-2
variables of the real model; for ANODE 36,096, so the forward pass of all MADEs
is 541,440 FLOP/event. A training step runs each MADE once forward and its
backward pass costs about twice that: 3 * 541,440 = 1,624,320 FLOP/event.
Sampling runs each MADE D times per block: 4 * 541,440 = 2,165,760 FLOP/event.
GFLOP/s = events/s * FLOP/event / 1e9, reported with its share of the GEMM peak.

    python benchmarks/throughput.py --json throughput.json
    python benchmarks/throughput.py --quick        # CI-sized budgets
    python benchmarks/throughput.py --step 4096 0  # one step-only figure (child process)
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from anode import CONDITIONS, FEATURES, anode_flow, lhco_like
from gpu_check import cpu_model
from threadpoolctl import threadpool_limits

from fedhex_hpc._tf import tf
from fedhex_hpc.config import TrainConfig
from fedhex_hpc.flows import FlowModel
from fedhex_hpc.io_utils import write_json_atomic
from fedhex_hpc.studies.steps.train import configure_parallelism
from fedhex_hpc.train.parts import l2_cache_bytes, part_elements
from fedhex_hpc.train.step import build_train_steps, steps_per_call

GEMM_N = 2048
GEMM_ROUND_SECONDS = 2.5
GEMM_ROUNDS = 3
N_ROTATING_BATCHES = 4
#: Epochs of each end-to-end run; the best of all but the first is reported.
E2E_EPOCHS = 8
#: Memory budget of the streamed runs, MB; both dataset sizes are larger.
STREAM_BUDGET_MB = 1
#: (end-to-end events, sampled events, step seconds, smaller streamed dataset) per budget.
BUDGETS = {"full": (110_000, 400_000, 5.0, 100_000), "quick": (20_000, 20_000, 2.0, 60_000)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized budgets")
    parser.add_argument(
        "--threads", type=int, default=0, help="threads for TF and BLAS (0 = library default)"
    )
    parser.add_argument(
        "--batches", default="256,4096", help="comma-separated training batch sizes"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--step",
        nargs=2,
        type=int,
        metavar=("BATCH", "JIT"),
        help="print the step-only events/s of one batch size, XLA on (1) or off (0)",
    )
    args = parser.parse_args(argv)
    args.events, args.sample_events, args.seconds, args.stream_events = BUDGETS[
        "quick" if args.quick else "full"
    ]
    return args


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

    The last result is fetched to the host before the clock stops.
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


def step_events_per_second(
    model: FlowModel, batch: int, jit: bool, seconds: float, rng: np.random.Generator
) -> float:
    """Training events/s of the compiled steps alone, as the trainer calls them."""
    optimizer = tf.keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    steps = build_train_steps(model, optimizer, jit_compile=jit)
    k = steps_per_call(batch)
    stacks = []
    for i in range(N_ROTATING_BATCHES):
        x, c = lhco_like(rng, k * batch)
        seeds = tf.constant([[1, k * i + j] for j in range(k)], tf.int64)
        stacks.append(
            (tf.constant(x.reshape(k, batch, -1)), tf.constant(c.reshape(k, batch, -1)), seeds)
        )

    def call(i: int) -> tf.Tensor:
        x, c, seeds = stacks[i % N_ROTATING_BATCHES]
        return steps(x, c, None, seeds)

    calls, elapsed = timed_calls(call, seconds, warmup=2)
    return calls * k * batch / elapsed


def child_step_events_per_second(args: argparse.Namespace, batch: int, jit: bool) -> dict:
    """:func:`step_events_per_second` in a child process set up as ``fedhex train`` is.

    Returns:
        ``events_per_s`` and the row parts (``shards``) the child used.
    """
    command = [sys.executable, __file__, "--step", str(batch), str(int(jit))]
    command += ["--threads", str(args.threads), *(["--quick"] if args.quick else [])]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr}")
    events_per_s, shards = proc.stdout.split()[-2:]
    return {"events_per_s": float(events_per_s), "shards": int(shards)}


def sample_events_per_second(model: FlowModel, n: int, rng: np.random.Generator) -> float:
    """Sampling events/s of ``sample_batched``, ``n`` events with one condition row each."""
    _, cond = lhco_like(rng, n)
    model.sample_batched(len(cond[:1024]), cond[:1024], seed=0)  # trace
    started = time.perf_counter()
    model.sample_batched(n, cond, seed=1)
    return n / (time.perf_counter() - started)


def write_events(path: Path, n: int, rng: np.random.Generator) -> None:
    """An ``.npz`` file of ``n`` random ANODE-like events, one array per column."""
    x, c = lhco_like(rng, n)
    np.savez(
        path, **dict(zip(FEATURES, x.T, strict=True)), **dict(zip(CONDITIONS, c.T, strict=True))
    )


def anode_config(data: dict, batch: int, jit: bool, epochs: int, threads: int) -> dict:
    """The ANODE training configuration with the given data section."""
    return {
        "run": {"name": "throughput", "seed": 1},
        "data": data,
        "flow": {
            "n_blocks": 15,
            "hidden_units": [128, 128],
            "activation": "relu",
            "permutation": "reverse",
            "preprocessing": "standardize",
        },
        "train": {
            "batch_size": batch,
            "max_epochs": epochs,
            "learning_rate": 1e-4,
            "schedule": {"kind": "constant"},
            "early_stopping": {"patience": 0},
            "checkpoint_every": 100,
            "log_every": 1,
            "jit_compile": jit,
            "threads": threads,
        },
    }


def fedhex(*args: str) -> tuple[float, str]:
    """Run the ``fedhex`` CLI as a subprocess; return its peak RSS (MB) and its output.

    Raises:
        RuntimeError: the command failed (its output is in the message).
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedhex_hpc.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"fedhex {' '.join(args)} failed ({proc.returncode}):\n{output}")
    return usage.ru_maxrss / 2**10, output


def train_run(workdir: Path, name: str, config: dict) -> tuple[list[dict], float]:
    """``fedhex train`` of ``config``; return its history rows and its peak RSS (MB)."""
    config_path = workdir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run_dir = workdir / name
    rss, _ = fedhex("train", str(config_path), "--run-dir", str(run_dir), "--no-evaluate")
    with (run_dir / "history.csv").open() as fh:
        return list(csv.DictReader(fh)), rss


def end_to_end_events_per_second(
    workdir: Path, events_file: Path, batch: int, jit: bool, threads: int
) -> list[float]:
    """Events/s of every epoch but the first of ``fedhex train`` on ``events_file``."""
    data = {"source": "file", "path": str(events_file), "features": FEATURES}
    data["conditions"] = CONDITIONS
    config = anode_config(data, batch, jit, epochs=E2E_EPOCHS, threads=threads)
    rows, _ = train_run(workdir, f"e2e-{batch}-{'xla' if jit else 'graph'}", config)
    return [float(row["events_per_s"]) for row in rows[1:]]


def streamed_peak_rss(workdir: Path, n: int, threads: int, rng: np.random.Generator) -> float:
    """Peak RSS (MB) of one epoch of ``fedhex train`` streaming a dataset of ``n`` events."""
    source = workdir / f"stream-{n}.npz"
    write_events(source, n, rng)
    dataset = workdir / f"dataset-{n}"
    fedhex(
        "data", "convert", "columns", str(source), "-o", str(dataset),
        "--features", ",".join(FEATURES), "--conditions", ",".join(CONDITIONS),
        "--workers", "1",
    )  # fmt: skip
    data = {"source": "dataset", "path": str(dataset), "memory_budget_mb": STREAM_BUDGET_MB}
    config = anode_config(data, 4096, False, epochs=1, threads=threads)
    _, rss = train_run(workdir, f"stream-{n}", config)
    return rss


def result_row(
    what: str,
    batch: int,
    jit: bool,
    shards: int,
    events_per_s: float,
    flops_per_event: int,
    peak: float,
) -> dict:
    """One table row: throughput in events/s and GFLOP/s, and the share of the peak."""
    gflops = events_per_s * flops_per_event / 1e9
    return {
        "what": what,
        "batch": batch,
        "jit": jit,
        "shards": shards,
        "events_per_s": events_per_s,
        "flop_per_event": flops_per_event,
        "gflops": gflops,
        "percent_of_peak": 100 * gflops / peak,
    }


def markdown_table(rows: list[dict]) -> str:
    """The results as a markdown table."""
    lines = [
        "| what | batch | XLA | row parts | events/s | GFLOP/s | % of GEMM peak |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['what']} | {r['batch']:,} | {'yes' if r['jit'] else 'no'} | {r['shards']} "
        f"| {r['events_per_s']:,.0f} | {r['gflops']:.1f} | {r['percent_of_peak']:.1f} |"
        for r in rows
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace, workdir: Path) -> dict:
    """Measure everything once; return all results."""
    rng = np.random.default_rng(0)
    peak_before = gemm_peak_gflops()
    sampling_shards = configure_parallelism(TrainConfig(threads=args.threads))
    model = anode_flow(rng)
    model.shards = sampling_shards
    forward = forward_flops_per_event(model)
    train_flops, sample_flops = 3 * forward, model.spec.n_features * forward
    events_file = workdir / "events.npz"
    write_events(events_file, args.events, rng)
    rates, epochs = [], {}
    for batch in (int(b) for b in args.batches.split(",")):
        for jit in (False, True):
            step = child_step_events_per_second(args, batch, jit)
            parts = step["shards"]
            rates.append(("train step only", batch, jit, parts, step["events_per_s"], train_flops))
            epoch_rates = end_to_end_events_per_second(
                workdir, events_file, batch, jit, args.threads
            )
            epochs[f"{batch}{' xla' if jit else ''}"] = epoch_rates
            best = max(epoch_rates)
            rates.append(("fedhex train end to end", batch, jit, parts, best, train_flops))
    sample_rate = sample_events_per_second(model, args.sample_events, rng)
    what = f"sample {args.sample_events:,} events"
    rates.append((what, 32_768, True, model.shards, sample_rate, sample_flops))
    sizes = [args.stream_events, 4 * args.stream_events]
    memory = {n: streamed_peak_rss(workdir, n, args.threads, rng) for n in sizes}
    peak = max(peak_before, gemm_peak_gflops())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
        "l2_cache_bytes": l2_cache_bytes(),
        "part_rows": part_elements() // max(model.spec.hidden_units),
        "gemm_n": GEMM_N,
        "gemm_peak_gflops": peak,
        "train_flop_per_event": train_flops,
        "sample_flop_per_event": sample_flops,
        "threads": args.threads,
        "events": args.events,
        "rows": [result_row(*rate, peak) for rate in rates],
        "end_to_end_epochs_events_per_s": epochs,
        "stream_budget_mb": STREAM_BUDGET_MB,
        "streamed_peak_rss_mb": {str(n): rss for n, rss in memory.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and optionally write JSON."""
    args = parse_args(argv)
    if args.step:
        batch, jit = args.step[0], bool(args.step[1])
        shards = configure_parallelism(TrainConfig(threads=args.threads, jit_compile=jit))
        model = anode_flow(np.random.default_rng(0))
        model.shards = shards
        rate = step_events_per_second(model, batch, jit, args.seconds, np.random.default_rng(1))
        print(rate, shards)
        return
    with (
        threadpool_limits(limits=args.threads or None, user_api="blas"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        results = run(args, Path(tmp))
    print(markdown_table(results["rows"]))
    print()
    (small, rss_small), (large, rss_large) = results["streamed_peak_rss_mb"].items()
    print(
        f"GEMM peak (numpy fp32, n={GEMM_N}): {results['gemm_peak_gflops']:.1f} GFLOP/s; "
        f"FLOP/event: train step {results['train_flop_per_event']:,}, "
        f"sample {results['sample_flop_per_event']:,}; "
        f"end to end on {results['events']:,} events (best of epochs 2-{E2E_EPOCHS})"
    )
    peak = results["gemm_peak_gflops"]
    medians = ", ".join(
        f"{what} {100 * np.median(r) * results['train_flop_per_event'] / 1e9 / peak:.1f} %"
        for what, r in results["end_to_end_epochs_events_per_s"].items()
    )
    print(f"end to end, median of epochs 2-{E2E_EPOCHS} as % of the GEMM peak: {medians}")
    print(
        f"fedhex train streaming (memory budget {STREAM_BUDGET_MB} MB, batch 4,096): "
        f"peak RSS {rss_small:.0f} MB at {int(small):,} events, {rss_large:.0f} MB at "
        f"{int(large):,} events ({100 * (rss_large / rss_small - 1):+.1f} %)"
    )
    load = ", ".join(f"{v:.2f}" for v in results["load_average"])
    l2 = results["l2_cache_bytes"]
    print(
        f"{results['date']}; {results['cpu']}; TF_ENABLE_ONEDNN_OPTS={results['onednn']}; "
        f"L2 {'unknown' if l2 is None else f'{l2 // 2**10:,} KB'} per core, row parts of "
        f"at most {results['part_rows']:,} rows in turn; load average {load}"
    )
    if args.json is not None:
        write_json_atomic(args.json, results)


if __name__ == "__main__":
    main()
