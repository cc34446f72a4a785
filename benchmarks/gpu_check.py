"""The measurements of ``gpu_check.sh``: one table of what this node does with the
ANODE flow (4 features | 1 condition, 15 MADE blocks of 2 x 128 ReLU units).

Rows: the device and its driver (``nvidia-smi`` when present, else the CPU
model); training events/s of the compiled step on prebuilt tensors per batch
size, with and without XLA; sampling events/s; log-density events/s; with two
or more GPUs a 2-rank Horovod run at the largest batch per rank and its scaling
efficiency (2-rank events/s over twice the 1-rank figure), else the reason it
is skipped. ``--budget`` scales the work: ``gpu`` (the full check, within 5
minutes on a GPU node), ``cpu`` (batches / 16, fewer events) and ``tiny`` (a
2-block flow, batches / 64, for tests).

    python benchmarks/gpu_check.py --budget cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Budget:
    """How much one check does."""

    batches: tuple[int, ...]
    seconds: float
    sample_events: int
    log_prob_events: int
    n_blocks: int = 15


BUDGETS = {
    "gpu": Budget((4096, 16384, 65536), 5.0, 400_000, 1_000_000),
    "cpu": Budget((256, 1024, 4096), 2.0, 20_000, 100_000),
    "tiny": Budget((64, 256, 1024), 0.2, 2_000, 10_000, n_blocks=2),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="gpu")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def nvidia_gpus() -> list[tuple[str, str]]:
    """(name, driver version) of every GPU ``nvidia-smi`` lists; empty without one."""
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    proc = subprocess.run(query, capture_output=True, text=True, check=False)
    if proc.returncode:
        return []
    return [tuple(p.strip() for p in line.split(",", 1)) for line in proc.stdout.splitlines()]


def cpu_model() -> str:
    """The CPU's model name and the number of cores this process may use."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def flow(budget: Budget, rng: np.random.Generator):
    """The ANODE flow (with ``budget.n_blocks`` blocks)."""
    from anode import anode_flow

    model = anode_flow(rng)
    if budget.n_blocks == model.spec.n_blocks:
        return model
    from dataclasses import replace

    from fedhex_hpc.flows import FlowModel

    return FlowModel(replace(model.spec, n_blocks=budget.n_blocks))


def timed(call, seconds: float) -> float:
    """Seconds per ``call()`` after one warm-up call, over at least 2 calls and ``seconds``."""
    np.asarray(call())
    calls, started = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - started < seconds:
        result = call()
        calls += 1
    np.asarray(result)
    return (time.perf_counter() - started) / calls


def train_rate(model, batch: int, jit: bool, seconds: float, wrap_tape=None) -> float:
    """Events/s of the compiled training step at ``batch``."""
    from anode import anode_step, lhco_like

    from fedhex_hpc._tf import tf

    step, _ = anode_step(model, jit, wrap_tape)
    x, c = (tf.constant(a) for a in lhco_like(np.random.default_rng(batch), batch))
    seed = tf.constant([1, 0], tf.int64)
    return batch / timed(lambda: step(x, c, None, seed), seconds)


def rows(budget: Budget) -> list[tuple[str, str]]:
    """The measured rows as (what, value) pairs."""
    from anode import lhco_like

    rng = np.random.default_rng(0)
    model = flow(budget, rng)
    gpus = nvidia_gpus()
    out = [("device", "; ".join(f"{n} (driver {d})" for n, d in gpus) or f"CPU: {cpu_model()}")]
    out.append(("model", f"ANODE flow, {model.spec.n_blocks} MADE blocks of 2 x 128"))
    single = {}
    for batch in budget.batches:
        for jit in (False, True):
            rate = train_rate(model, batch, jit, budget.seconds)
            single[batch, jit] = rate
            out.append((f"train, batch {batch:,}, XLA {'on' if jit else 'off'}", f"{rate:,.0f}"))
    _, cond = lhco_like(rng, budget.sample_events)
    model.sample_batched(1024, cond[:1024], seed=0)
    started = time.perf_counter()
    model.sample_batched(len(cond), cond, seed=1)
    rate = len(cond) / (time.perf_counter() - started)
    out.append((f"sample {len(cond):,} events", f"{rate:,.0f}"))
    x, cond = lhco_like(rng, budget.log_prob_events)
    model.log_prob_batched(x[:1024], cond[:1024])
    started = time.perf_counter()
    model.log_prob_batched(x, cond)
    out.append(
        (f"log-density {len(x):,} events", f"{len(x) / (time.perf_counter() - started):,.0f}")
    )
    batch = budget.batches[-1]
    if len(gpus) < 2:
        out.append(("Horovod 2 ranks", f"skipped: {len(gpus)} GPU(s), needs 2"))
        return out
    launcher = shutil.which("horovodrun")
    if launcher is None:
        out.append(("Horovod 2 ranks", "skipped: horovodrun not found"))
        return out
    result = HERE / f".gpu_check_horovod_{os.getpid()}.json"
    cmd = [launcher, "-np", "2", sys.executable, __file__, "--budget", "gpu"]
    proc = subprocess.run(
        [*cmd, "--worker", str(result), "--batch", str(batch)], capture_output=True, text=True
    )
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        out.append(("Horovod 2 ranks", f"failed: {tail[0]}"))
        return out
    total = json.loads(result.read_text())["events_per_s"]
    result.unlink()
    efficiency = total / (2 * single[batch, False])
    out.append((f"Horovod 2 ranks, batch {batch:,} per rank", f"{total:,.0f}"))
    out.append(("Horovod scaling efficiency", f"{100 * efficiency:.0f} %"))
    return out


def worker(result: Path, batch: int, budget: Budget) -> None:
    """One Horovod rank: time the distributed step; rank 0 writes the total events/s."""
    from fedhex_hpc.train.distributed import setup_distributed

    dist = setup_distributed("horovod")
    model = flow(budget, np.random.default_rng(0))
    rate = train_rate(model, batch, False, budget.seconds, dist.wrap_tape)
    total = dist.sum([rate])[0]
    if dist.is_root:
        result.write_text(json.dumps({"events_per_s": total}))


def table(pairs: list[tuple[str, str]]) -> str:
    """The rows as a markdown table."""
    lines = ["| check | events/s |", "|---|---:|"]
    return "\n".join([*lines, *(f"| {what} | {value} |" for what, value in pairs)])


def main(argv: list[str] | None = None) -> None:
    """Run the check and print its table."""
    args = parse_args(argv)
    sys.path.insert(0, str(HERE))
    budget = BUDGETS[args.budget]
    if args.worker is not None:
        worker(args.worker, args.batch, budget)
        return
    started = time.perf_counter()
    pairs = rows(budget)
    print(table(pairs))
    print(f"\nbudget {args.budget}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
