"""Converting the LHC Olympics R&D raw file: the seed's pandas loop vs ``fedhex data convert``.

One run generates a synthetic raw file in the public layout (pandas fixed format,
key ``df``, float64 events x 2101: 700 zero-padded (pT, eta, phi) particles and the
label) of ``--gb`` GB, and with ``--double`` (default) a second one of twice the
size. Each method then processes the same file in a fresh subprocess:

a. seed approach: ``pandas.read_hdf(path, "df", start, stop)`` in 10,000-row chunks,
   ``.astype("float32")``, ``HDFStore.append(..., format="table")`` into one file,
   no compression (what the seed project did);
b. bare h5py read-and-cast: ``df/block0_values`` read in 10,000-row slices and cast
   to float32, nothing written: the local I/O ceiling;
c. fedhex convert: ``python -m fedhex_hpc.cli data convert lhco RAW -o DATASET
   --workers 2`` with its defaults (a local Dask cluster of 2 worker processes,
   Blosc-LZ4-compressed float32 shards), repeated on the double-size file.

Every method runs ``--repeats`` times (3), the methods interleaved so that slow
spells of a shared machine hit all of them. For each: the median wall seconds of
the subprocess (interpreter start and imports included), input MB/s (input bytes /
median wall), the peak memory of the whole process tree (the parent samples the
child and all its descendants, i.e. the Dask scheduler and workers: RSS every
0.1 s, PSS every 0.5 s since reading it slows the process down) as summed PSS
(shared pages split among the processes sharing them: the memory the tree holds)
and as summed RSS (shared pages counted once per process: forked workers share
their parent's), the largest single-process RSS, and the disk usage of the
output. Before each method pending writes are flushed and the input is read
once, so every method starts from a warm page cache. MB = 1e6 bytes, GB = 1e9
bytes.

Targets (printed with the results):

* fedhex throughput >= 1.5x the seed approach's;
* fedhex throughput >= 50 % of the bare read;
* fedhex peak tree memory (PSS) < 2 GB with the default settings;
* doubling the input adds < 10 % to fedhex's peak tree memory (PSS);
* fedhex output no larger than the seed's.

Finally the converted dataset's train split (all 2100 particle columns) is streamed
through ``ShardStream`` (batch 4096, shuffle buffer 262,144, or the whole split as
one batch if it is smaller), whole epochs for at least ``--loader-seconds``, and
its events/s are compared with one ANODE training step (conditional MAF, 4
features + 1 condition, 15 MADE blocks of 2 x 128 ReLU units,
``build_train_step``, batch 4096) timed as long.

    python benchmarks/convert_lhco.py --gb 2 --json convert_lhco.json
    python benchmarks/convert_lhco.py --gb 0.05   # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

MB = 1e6
RAW_COLUMNS = 2101
READ_ROWS = 10_000
SAMPLE_SECONDS = 0.1
# PSS is read from /proc/PID/smaps_rollup, a walk of the page tables under the
# process's memory-map lock that stalls its mmap/munmap calls: every 5th sample only
PSS_EVERY = 5
LOADER_BATCH = 4096
SHUFFLE_BUFFER = 262_144
FEATURE_EVENTS = 1_000_000  # ANODE-features dataset for the loader line
STEP_BATCH = 4096
STEP_WARMUP = 3
FEDHEX_WORKERS = 2
DEFAULT_WORKDIR = Path("runs") / "bench-convert"


@dataclass(frozen=True)
class Measured:
    """One method on one input, run in its own subprocess (median wall time and
    largest memory peaks over the repeats)."""

    method: str
    input_mb: float
    wall_s: float
    walls_s: tuple[float, ...]
    peak_tree_rss_mb: float
    peak_tree_pss_mb: float
    peak_process_rss_mb: float
    output_mb: float | None

    @property
    def input_mb_s(self) -> float:
        return self.input_mb / self.wall_s


@dataclass(frozen=True)
class Check:
    """One target and whether the run met it."""

    name: str
    value: float
    unit: str
    target: str
    met: bool

    @property
    def shown(self) -> str:
        return f"{self.value:.2f}x" if self.unit == "x" else f"{self.value:,.0f} {self.unit}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="size of the raw input file")
    parser.add_argument(
        "--double",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also convert a file of twice the size (memory scaling)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="where the scratch folder goes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--loader-seconds", type=float, default=10.0, help="timed window of loader and step"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each method; the median wall time counts"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--task", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- child tasks
# Run as ``convert_lhco.py --task NAME ARGS...`` in a fresh process each; heavy modules
# are imported inside them so every process loads only what its method needs.


def task_seed(raw: str, out: str) -> None:
    """The seed approach: pandas chunks, cast to float32, appended to one table file."""
    import pandas as pd

    with pd.HDFStore(out, mode="w") as store:
        start = 0
        while True:
            chunk = pd.read_hdf(raw, "df", start=start, stop=start + READ_ROWS)
            if len(chunk):
                store.append("df", chunk.astype("float32"), format="table")
            if len(chunk) < READ_ROWS:
                break
            start += READ_ROWS


def task_bare(raw: str) -> None:
    """Read the raw block in slices with h5py and cast it to float32; write nothing."""
    import h5py
    import numpy as np

    with h5py.File(raw, "r", locking=False) as fh:
        values = fh["df/block0_values"]
        for start in range(0, values.shape[0], READ_ROWS):
            values[start : start + READ_ROWS].astype(np.float32)


def task_loader(dataset: str, seconds: str) -> None:
    """Stream whole epochs of the train split through ``ShardStream`` until ``seconds``
    have passed (each epoch refills the shuffle buffer, so partial epochs would
    overstate or understate the rate); print events, bytes and seconds."""
    from fedhex_hpc.config import parse_config
    from fedhex_hpc.data.dataset import DatasetView, ShardStream

    cfg = {"source": "dataset", "path": dataset, "memory_budget_mb": 0}
    view = DatasetView(parse_config({"data": cfg}).data)
    batch = min(LOADER_BATCH, sum(view.manifest.splits["train"].values()))
    stream = ShardStream(view, "train", batch, seed=1, shuffle_buffer=SHUFFLE_BUFFER)
    events = delivered = epoch = 0
    started = time.perf_counter()
    while time.perf_counter() - started < float(seconds):
        for arrays in stream.epoch(epoch):
            parts = (arrays.x, arrays.cond, arrays.weight)
            events += len(arrays.x)
            delivered += sum(a.nbytes for a in parts if a is not None)
        epoch += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"batch": batch, "events": events, "bytes": delivered, "seconds": elapsed}))


def task_step(seconds: str) -> None:
    """Time the ANODE training step at batch 4096; print events and seconds."""
    import numpy as np
    from anode import anode_flow, anode_step, lhco_like

    from fedhex_hpc._tf import tf

    rng = np.random.default_rng(0)
    step, _ = anode_step(anode_flow(rng))
    x, c = lhco_like(rng, STEP_BATCH)
    x_t, c_t = tf.constant(x), tf.constant(c)
    for i in range(STEP_WARMUP):
        np.asarray(step(x_t, c_t, None, tf.constant([1, i], tf.int64)))
    calls = 0
    started = time.perf_counter()
    while time.perf_counter() - started < float(seconds):
        loss = step(x_t, c_t, None, tf.constant([1, calls], tf.int64))
        calls += 1
        np.asarray(loss)
    elapsed = time.perf_counter() - started
    print(json.dumps({"events": calls * STEP_BATCH, "seconds": elapsed}))


TASKS = {"seed": task_seed, "bare": task_bare, "loader": task_loader, "step": task_step}


def tree_memory(root: psutil.Process, with_pss: bool) -> tuple[int, int, int]:
    """Summed RSS, summed PSS (0 unless ``with_pss``) and largest RSS in bytes of
    ``root`` and its descendants.

    Forked workers share their parent's pages: summed RSS counts each shared
    page once per process, summed PSS (proportional set size) splits it among
    them, so it is what the tree really holds. RSS alone is cheap to read.
    """
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0, 0
    rss, pss = [], []
    for process in processes:
        try:
            info = process.memory_full_info() if with_pss else process.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss.append(info.rss)
        pss.append(info.pss if with_pss else 0)
    return sum(rss), sum(pss), max(rss, default=0)


def run_sampled(command: list[str]) -> tuple[float, tuple[int, int, int], str]:
    """Run ``command``; return its wall seconds, the peaks of :func:`tree_memory`, and stdout.

    Raises:
        RuntimeError: the command failed (its stderr tail is in the message).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        root = psutil.Process(process.pid)
        peaks = [0, 0, 0]
        finished = threading.Event()

        def sample() -> None:
            count = 0
            while not finished.is_set():
                peaks[:] = map(max, peaks, tree_memory(root, count % PSS_EVERY == 0))
                count += 1
                finished.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        wall = time.perf_counter() - started
        finished.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        if code:
            tail = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} exited with {code}:\n{tail}")
        return wall, (peaks[0], peaks[1], peaks[2]), out.read().decode(errors="replace")


def task_command(name: str, *args: str | Path) -> list[str]:
    """This script run as the child task ``name``."""
    return [sys.executable, str(Path(__file__).resolve()), "--task", name, *map(str, args)]


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk for a file or a folder tree, like ``du``."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)


def warm_page_cache(path: Path, block: int = 1 << 24) -> None:
    """Read ``path`` once so that every method starts from a warm page cache.

    The kernel may have evicted parts of it since the last method ran (a proactive
    reclaimer such as DAMON's does so on shared machines).
    """
    with open(path, "rb", buffering=0) as fh:
        while fh.read(block):
            pass


@dataclass(frozen=True)
class Plan:
    """One method to measure: its command, input and output."""

    method: str
    command: list[str]
    raw: Path
    output: Path | None


def measure(plan: Plan) -> Measured:
    """Run one method once in a subprocess, from a clean output, and collect its figures."""
    print(f"running {plan.method} on {plan.raw.name} ...", file=sys.stderr, flush=True)
    if plan.output is not None and plan.output.is_dir():
        shutil.rmtree(plan.output)
    os.sync()  # no method pays for the write-back of what the one before it wrote
    warm_page_cache(plan.raw)
    wall, (tree_rss, tree_pss, single), _ = run_sampled(plan.command)
    return Measured(
        method=plan.method,
        input_mb=plan.raw.stat().st_size / MB,
        wall_s=wall,
        walls_s=(wall,),
        peak_tree_rss_mb=tree_rss / MB,
        peak_tree_pss_mb=tree_pss / MB,
        peak_process_rss_mb=single / MB,
        output_mb=None if plan.output is None else disk_usage(plan.output) / MB,
    )


def combine(runs: list[Measured]) -> Measured:
    """The median wall time and the largest memory peaks of repeated runs."""
    walls = tuple(r.wall_s for r in runs)
    return Measured(
        method=runs[0].method,
        input_mb=runs[0].input_mb,
        wall_s=statistics.median(walls),
        walls_s=walls,
        peak_tree_rss_mb=max(r.peak_tree_rss_mb for r in runs),
        peak_tree_pss_mb=max(r.peak_tree_pss_mb for r in runs),
        peak_process_rss_mb=max(r.peak_process_rss_mb for r in runs),
        output_mb=runs[-1].output_mb,
    )


def fedhex_command(raw: Path, dataset: Path) -> list[str]:
    """The documented conversion command line, with default settings."""
    return [
        *(sys.executable, "-m", "fedhex_hpc.cli", "data", "convert", "lhco"),
        *(str(raw), "-o", str(dataset), "--workers", str(FEDHEX_WORKERS)),
    ]


def rate(command: list[str]) -> dict[str, float]:
    """Run a timed child task; its JSON line plus events/s and the tree's peak RSS."""
    _, (tree, _, _), stdout = run_sampled(command)
    result = json.loads(stdout.strip().splitlines()[-1])
    per_second = result["events"] / result["seconds"]
    return {**result, "events_per_s": per_second, "peak_rss_mb": tree / MB}


# ----------------------------------------------------------------------------- the run


def generate(path: Path, gb: float, seed: int) -> Path:
    """A synthetic raw LHCO file of about ``gb`` GB."""
    from fedhex_hpc.data.synthetic.lhco import write_raw

    n_events = max(1, round(gb * 1e9 / (RAW_COLUMNS * 8)))
    print(f"generating {path.name}: {n_events:,} events ...", file=sys.stderr, flush=True)
    return write_raw(path, n_events, seed=seed)


def checks(results: dict[str, Measured]) -> list[Check]:
    """The targets with their measured values."""
    seed, bare, fedhex = results["seed"], results["bare"], results["fedhex"]
    speedup = seed.wall_s / fedhex.wall_s
    of_bare = 100 * bare.wall_s / fedhex.wall_s
    peak = fedhex.peak_tree_pss_mb
    size = fedhex.output_mb / seed.output_mb
    found = [
        Check("fedhex / seed throughput", speedup, "x", ">= 1.5x", speedup >= 1.5),
        Check("fedhex / bare throughput", of_bare, "%", ">= 50 %", of_bare >= 50),
        Check("fedhex peak tree memory (PSS)", peak, "MB", "< 2000 MB", peak < 2000),
        Check("fedhex / seed output size", size, "x", "<= 1x", size <= 1),
    ]
    if "fedhex_double" in results:
        increase = 100 * (results["fedhex_double"].peak_tree_pss_mb / peak - 1)
        found.append(
            Check("peak memory increase at 2x input", increase, "%", "< 10 %", increase < 10)
        )
    return found


def markdown(results: dict[str, Measured], targets: list[Check]) -> str:
    """The measurements and the targets as two markdown tables."""
    lines = [
        "| method | input MB | wall s (median) | input MB/s | peak tree PSS MB | peak tree RSS MB "
        "| max process RSS MB | output MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        output = "-" if r.output_mb is None else f"{r.output_mb:,.1f}"
        lines.append(
            f"| {r.method} | {r.input_mb:,.0f} | {r.wall_s:.2f} | {r.input_mb_s:,.1f} "
            f"| {r.peak_tree_pss_mb:,.0f} | {r.peak_tree_rss_mb:,.0f} "
            f"| {r.peak_process_rss_mb:,.0f} | {output} |"
        )
    lines += ["", "| check | value | target | met |", "|---|---:|---:|---|"]
    lines += [
        f"| {t.name} | {t.shown} | {t.target} | {'yes' if t.met else 'NO'} |" for t in targets
    ]
    return "\n".join(lines)


def loader_line(name: str, loader: dict[str, float], step: dict[str, float]) -> str:
    """One sentence comparing the loader's rate with the training step's."""
    return (
        f"loader ({name}) delivers {loader['events_per_s']:,.0f} events/s "
        f"({loader['bytes'] / loader['seconds'] / MB:,.0f} MB/s, batch "
        f"{loader['batch']:,}) vs the ANODE training step {step['events_per_s']:,.0f} events/s "
        f"(batch {STEP_BATCH:,}): {loader['events_per_s'] / step['events_per_s']:.1f}x"
    )


def features_dataset(work: Path, n_events: int) -> Path:
    """A converted ANODE-features dataset (what the training step reads)."""
    from fedhex_hpc.data.synthetic.lhco import write_features

    source = write_features(work / "features.h5", n_events, seed=2)
    dataset = work / "features_dataset"
    command = [
        *(sys.executable, "-m", "fedhex_hpc.cli", "data", "convert", "lhco-features"),
        str(source),
        "-o",
        str(dataset),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return dataset


def run(args: argparse.Namespace, work: Path) -> dict:
    """Generate the inputs, measure every method and the loader; return all results."""
    raw = generate(work / "raw.h5", args.gb, seed=0)
    double = generate(work / "raw_double.h5", 2 * args.gb, seed=1) if args.double else None
    seed_out = work / "seed.h5"
    plans = {
        "seed": Plan("seed approach", task_command("seed", raw, seed_out), raw, seed_out),
        "bare": Plan("bare h5py read-and-cast", task_command("bare", raw), raw, None),
        "fedhex": Plan(
            "fedhex convert", fedhex_command(raw, work / "dataset"), raw, work / "dataset"
        ),
    }
    if double is not None:
        plans["fedhex_double"] = Plan(
            "fedhex convert (2x input)",
            fedhex_command(double, work / "dataset_double"),
            double,
            work / "dataset_double",
        )
    runs: dict[str, list[Measured]] = {key: [] for key in plans}
    for _ in range(args.repeats):  # interleaved, so that slow spells hit every method
        for key, plan in plans.items():
            runs[key].append(measure(plan))
    results = {key: combine(measured) for key, measured in runs.items()}
    print("streaming the train split and timing the training step ...", file=sys.stderr)
    seconds = str(args.loader_seconds)
    loader = rate(task_command("loader", work / "dataset", seconds))
    features = features_dataset(work, FEATURE_EVENTS)
    features_loader = rate(task_command("loader", features, seconds))
    step = rate(task_command("step", seconds))
    targets = checks(results)
    print(markdown(results, targets))
    print()
    print(loader_line("2100 particle columns", loader, step))
    print(loader_line("ANODE features, 5 columns", features_loader, step))
    return {
        "gb": args.gb,
        "methods": {key: {**asdict(r), "input_mb_s": r.input_mb_s} for key, r in results.items()},
        "checks": [asdict(t) for t in targets],
        "loader": loader,
        "features_loader": features_loader,
        "train_step": {**step, "batch": STEP_BATCH},
    }


def remove_empty(folders: list[Path]) -> None:
    """Remove folders this run created, deepest first, as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or one child task when called with ``--task``."""
    args = parse_args(argv)
    if args.task:
        TASKS[args.task[0]](*args.task[1:])
        return 0
    missing = [p for p in (args.workdir, *args.workdir.parents) if not p.exists()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    try:
        results = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            remove_empty(missing)
    if args.keep:
        print(f"kept the files in {work}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
