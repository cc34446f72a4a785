"""Data-parallel scaling of the ANODE configuration: 1 vs 2 Horovod ranks on the CPU,
and a model of N GPUs.

Measured (launched by this script with ``mpirun -np 1`` and ``-np 2``, each rank
with ``--threads`` TensorFlow threads): training events/s per rank and in total
at the same per-rank batch, the time of one all-reduce of the gradient (all
trainable variables, fp32), and the all-reduce share of a step.

Modelled (printed below the measurement): a ring all-reduce moves
``2 (N-1)/N * bytes`` per GPU and pays ``2 (N-1)`` latencies, so
``t_ar(N) = 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency``; with
gradients reduced after the backward pass (no overlap, the conservative case) the
efficiency is ``t_step / (t_step + t_ar)``. ``t_step(B)`` is the per-GPU step
time at per-GPU batch ``B``: ``t0 + B * flop_per_event / gpu_flops`` with a
launch-bound floor ``t0``. The GPU figures are stated assumptions, not
measurements (no GPU here); change them with the options.

    python benchmarks/scaling.py --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FEATURES, CONDITIONS, BLOCKS, HIDDEN = 4, 1, 15, 128  # the ANODE configuration (anode.py)
INTERCONNECTS = {  # effective per-GPU all-reduce bandwidth (bytes/s), latency (s)
    "NVLink (within a node)": (150e9, 5e-6),
    "InfiniBand HDR 200 Gb/s": (22e9, 8e-6),
    "100 Gb Ethernet (RoCE)": (10e9, 15e-6),
}


def worker(batch: int, seconds: float, threads: int, out: str) -> None:
    """One rank: time training steps and gradient all-reduces; rank 0 writes JSON."""
    import numpy as np

    from fedhex_hpc._tf import tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from anode import anode_flow, anode_step, lhco_like

    from fedhex_hpc.train.distributed import setup_distributed

    dist = setup_distributed("horovod")
    rng = np.random.default_rng(dist.ranks.rank)
    model = anode_flow(rng)
    step, optimizer = anode_step(model, wrap_tape=dist.wrap_tape)
    x, c = lhco_like(rng, batch * 4)
    batches = [
        (tf.constant(x[i * batch : (i + 1) * batch]), tf.constant(c[i * batch : (i + 1) * batch]))
        for i in range(4)
    ]
    seed = tf.constant([1, 0], tf.int64)
    for i in range(3):
        step(*batches[i % 4], None, seed).numpy()
    dist.after_first_step([*model.variables, *optimizer.variables()])
    # every rank runs the same number of steps: agree on it from rank 0's timing
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        step(*batches[n % 4], None, seed)
        n += 1
    n = int(dist.sum([float(n)])[0] / dist.ranks.size)
    started = time.perf_counter()
    for i in range(n):
        loss = step(*batches[i % 4], None, seed)
    loss.numpy()
    step_seconds = (time.perf_counter() - started) / n
    n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    allreduce_seconds = 0.0
    if dist.ranks.size > 1:
        grads = [tf.ones_like(v) for v in model.trainable_variables]
        reduce = tf.function(lambda g: [dist.hvd.allreduce(t) for t in g])
        reduce(grads)
        started = time.perf_counter()
        for _ in range(50):
            out_grads = reduce(grads)
        out_grads[-1].numpy()
        allreduce_seconds = (time.perf_counter() - started) / 50
    if dist.is_root:
        Path(out).write_text(
            json.dumps(
                {
                    "ranks": dist.ranks.size,
                    "batch_per_rank": batch,
                    "step_seconds": step_seconds,
                    "allreduce_seconds": allreduce_seconds,
                    "parameters": n_params,
                }
            )
        )


def launch(ranks: int, batch: int, seconds: float, threads: int, out: Path) -> dict:
    """Run :func:`worker` under ``mpirun -np ranks`` and return rank 0's figures."""
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    }
    cmd = [
        "mpirun",
        "-np",
        str(ranks),
        sys.executable,
        __file__,
        "--worker",
        "--batch",
        str(batch),
        "--seconds",
        str(seconds),
        "--threads",
        str(threads),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return json.loads(out.read_text())


def modelled_efficiency(
    n: int, grad_bytes: float, bandwidth: float, latency: float, step_seconds: float
) -> float:
    """Fraction of ideal speed-up at ``n`` GPUs for a non-overlapped ring all-reduce."""
    allreduce = 2 * (n - 1) / n * grad_bytes / bandwidth + 2 * (n - 1) * latency
    return step_seconds / (step_seconds + allreduce)


def main() -> None:
    """Measure 1 and 2 ranks, then print the N-GPU model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1024, help="batch per rank")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per rank")
    parser.add_argument(
        "--gpu-tflops",
        type=float,
        default=10.0,
        help="sustained fp32 TFLOP/s of one GPU on these small matmuls",
    )
    parser.add_argument(
        "--launch-floor-ms",
        type=float,
        default=6.0,
        help="per-step time of kernel launches (15 blocks x 3 passes)",
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.batch, args.seconds, args.threads, args.out)
        return
    tmp = Path("runs") / "bench-scaling"
    tmp.mkdir(parents=True, exist_ok=True)
    one = launch(1, args.batch, args.seconds, args.threads, tmp / "one.json")
    two = launch(2, args.batch, args.seconds, args.threads, tmp / "two.json")
    rate1 = args.batch / one["step_seconds"]
    rate2 = 2 * args.batch / two["step_seconds"]
    print(
        f"\nANODE configuration, {args.batch} events per rank per step, "
        f"{args.threads} thread(s) per rank\n"
    )
    print("| ranks | step ms | events/s total | speed-up | all-reduce ms | all-reduce share |")
    print("|---|---|---|---|---|---|")
    print(f"| 1 | {one['step_seconds'] * 1e3:.2f} | {rate1:,.0f} | 1.00 | - | - |")
    share = two["allreduce_seconds"] / two["step_seconds"]
    print(
        f"| 2 | {two['step_seconds'] * 1e3:.2f} | {rate2:,.0f} | {rate2 / rate1:.2f} | "
        f"{two['allreduce_seconds'] * 1e3:.3f} | {share:.1%} |"
    )
    grad_bytes = 4 * one["parameters"]
    print(
        f"\ngradient all-reduced per step: {one['parameters']:,} parameters = "
        f"{grad_bytes / 1e6:.2f} MB (fp32)"
    )
    flop_per_event = (
        3
        * 2
        * BLOCKS
        * (FEATURES * HIDDEN + CONDITIONS * HIDDEN + HIDDEN * HIDDEN + HIDDEN * 2 * FEATURES)
    )
    print(
        f"modelled GPU step: {args.launch_floor_ms} ms launch floor + B x "
        f"{flop_per_event / 1e6:.2f} MFLOP / {args.gpu_tflops} TFLOP/s\n"
    )

    def step_seconds(batch: int) -> float:
        return args.launch_floor_ms * 1e-3 + batch * flop_per_event / (args.gpu_tflops * 1e12)

    def efficiency(n: int, batch: int, link: tuple[float, float]) -> float:
        return modelled_efficiency(n, grad_bytes, *link, step_seconds(batch))

    gpus = (8, 32, 128)
    print("| interconnect | per-GPU batch | " + " | ".join(f"{n} GPUs" for n in gpus) + " |")
    print("|---|---|" + "---|" * len(gpus))
    for name, link in INTERCONNECTS.items():
        for batch in (256, 4096):
            cells = " | ".join(f"{efficiency(n, batch, link):.1%}" for n in gpus)
            print(f"| {name} | {batch} | {cells} |")
    print("\nsmallest per-GPU batch (power of 2) keeping efficiency >= 90 %\n")
    print("| interconnect | " + " | ".join(f"{n} GPUs" for n in gpus) + " |")
    print("|---|" + "---|" * len(gpus))
    for name, link in INTERCONNECTS.items():
        needed = [
            next((b for b in (2**k for k in range(4, 24)) if efficiency(n, b, link) >= 0.9), None)
            for n in gpus
        ]
        print(f"| {name} | " + " | ".join(f"{b:,}" if b else "> 8M" for b in needed) + " |")


if __name__ == "__main__":
    main()
