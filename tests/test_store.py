"""Dataset store: conversion with Dask, manifest, verify, interrupted runs, training input."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import psutil
import pytest

from fedhex_hpc.config import parse_config
from fedhex_hpc.data.batches import InMemoryBatches, RankInfo
from fedhex_hpc.data.cluster import ClusterOptions
from fedhex_hpc.data.convert import convert, write_arrays
from fedhex_hpc.data.dataset import DatasetView, ShardStream
from fedhex_hpc.data.inspect import describe, verify
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.sources.base import Column
from fedhex_hpc.data.sources.columns import ColumnsSource
from fedhex_hpc.data.synthetic.lhco import write_raw
from fedhex_hpc.errors import DataError

from .conftest import run_cli

N = 20_000
LOCAL = ClusterOptions(workers=2, threads=1, memory_limit="1GB")


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as fh:
        group = fh.create_group("events")
        group["m"] = rng.uniform(2.5, 5.0, N)
        group["a"] = rng.normal(size=N)
        group["b"] = rng.normal(size=N) + group["m"][()]
        group["label"] = (rng.random(N) < 0.2).astype(float)
        a = group["a"][()]
        a[[10, 20, 30]] = [np.nan, np.inf, -np.inf]
        group["a"][...] = a
    return path


def source(path, chunk_rows=5_000):
    return ColumnsSource(
        path, ["a", "b"], ["m"], class_column="label", key="events", chunk_rows=chunk_rows
    )


def convert_args(table, out, *options):
    """``fedhex data convert columns`` arguments for the ``table`` fixture."""
    return [
        "data",
        "convert",
        "columns",
        str(table),
        *("--key", "events", "--features", "a,b", "--conditions", "m"),
        *("--class-column", "label", "-o", str(out), *options),
    ]


def test_convert_writes_shards_manifest_and_statistics(table, tmp_path):
    out = tmp_path / "ds"
    manifest = convert(source(table), out, seed=3, cluster=LOCAL)
    assert manifest.dropped_non_finite == 3
    assert sum(sum(c.values()) for c in manifest.splits.values()) == N - 3
    assert {s.split for s in manifest.shards} == {"train", "val", "test"}
    assert {s.cls for s in manifest.shards} == {"background", "signal"}
    assert manifest.stored_columns == ["a", "b", "m"]
    # split fractions near 80/10/10, and not by row order
    train = sum(manifest.splits["train"].values())
    assert 0.77 * N < train < 0.83 * N
    view = DatasetView(parse_config({"data": {"source": "dataset", "path": str(out)}}).data)
    rows = view.load("train")
    stats = manifest.stats["train"]["b"]
    assert stats["mean"] == pytest.approx(rows.x[:, 1].mean(), rel=1e-5)
    assert stats["std"] == pytest.approx(rows.x[:, 1].std(), rel=1e-4)
    assert stats["max"] == pytest.approx(rows.x[:, 1].max())
    with h5py.File(table) as fh:
        first_train = np.isin(fh["events"]["b"][:100].astype(np.float32), rows.x[:, 1]).mean()
    assert first_train < 0.95  # the first rows are spread over the splits
    assert "OK" in verify(out)
    text = describe(out)
    assert "train" in text and "signal" in text
    assert not (out / ".partial").exists()
    assert not (out / "logs").exists()  # nothing was logged


def test_strict_rejects_non_finite_rows(table, tmp_path):
    with pytest.raises(DataError, match="3 rows with NaN or Inf values"):
        convert(source(table, chunk_rows=N), tmp_path / "ds", strict=True, cluster=LOCAL)


def test_verify_detects_a_corrupt_shard_and_unfinished_dataset(table, tmp_path):
    out = tmp_path / "ds"
    manifest = convert(source(table), out, cluster=LOCAL)
    shard = out / manifest.shards[0].path
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum differs"):
        verify(out)
    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match="not a complete dataset"):
        Manifest.read(out)


def test_finished_dataset_is_not_overwritten_and_options_must_match(table, tmp_path):
    out = tmp_path / "ds"
    convert(source(table), out, cluster=LOCAL)
    with pytest.raises(DataError, match="already a complete dataset"):
        convert(source(table), out, cluster=LOCAL)
    convert(source(table), out, seed=9, overwrite=True, cluster=LOCAL)
    assert Manifest.read(out).options["seed"] == 9


def test_class_values_other_than_0_and_1_are_a_data_error(table, tmp_path):
    with h5py.File(table, "a") as fh:
        fh["events"]["label"][7] = 2.0
    expected = r"rows 0-5000: its row 7 has class 2; expected 0 \(background\) or 1"
    with pytest.raises(DataError, match=expected):
        convert(source(table), tmp_path / "ds", cluster=LOCAL)


@pytest.mark.parametrize(
    ("strict", "expected"),
    [
        (False, "rows 0-5000: its row 7 has class 2; expected 0 (background) or 1 (signal)"),
        (True, "rows 0-5000: 3 rows with NaN or Inf values (--strict)"),
    ],
)
def test_a_failing_worker_task_is_one_line_and_its_traceback_is_logged(
    table, tmp_path, strict, expected
):
    if not strict:
        with h5py.File(table, "a") as fh:
            fh["events"]["label"][7] = 2.0
    out = tmp_path / "ds"
    options = ["--chunk-rows", "5000", *(["--strict"] if strict else [])]
    result = run_cli(*convert_args(table, out, *options), check=False)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    (log,) = (out / "logs").glob("convert-*.log")
    assert lines[0].endswith(f" (worker traceback in {log})")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert f"fedhex_hpc.errors.DataError: data error: {table} {expected}" in text


def test_interrupted_conversion_of_a_changed_input_is_not_finished(table, tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(DataError, match="NaN or Inf"):
        convert(source(table), out, strict=True, cluster=LOCAL)
    assert (out / ".partial" / "options.json").is_file()
    with h5py.File(table, "a") as fh:
        fh["events"]["b"][0] = 1.0
    with pytest.raises(DataError, match=r"other options \(source_files\)"):
        convert(source(table), out, strict=True, cluster=LOCAL)


def test_sigkill_mid_conversion_then_rerun_finishes(table, tmp_path):
    def args(out):
        return convert_args(table, out, "--chunk-rows", "1000", "--workers", "1")

    reference, out = tmp_path / "ref", tmp_path / "ds"
    run_cli(*args(reference))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedhex_hpc.cli", *args(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list((out / ".partial").glob("part-*.json")) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.raises(DataError, match="not a complete dataset"):
        Manifest.read(out)
    rerun = run_cli(*args(out))
    assert "OK" in verify(out)
    assert Manifest.read(out).splits == Manifest.read(reference).splits
    assert "dataset" in rerun.stdout


def _worker_processes(conversion: psutil.Process) -> list[psutil.Process]:
    """The Dask worker processes of a local conversion: its children, less helpers."""
    return [
        child
        for child in conversion.children(recursive=True)
        if "resource_tracker" not in " ".join(child.cmdline())
    ]


def test_sigkill_of_a_worker_mid_conversion(tmp_path):
    n_events, n_parts = 6000, 30
    raw = write_raw(tmp_path / "raw.h5", n_events, seed=1)
    out = tmp_path / "ds"
    args = ["data", "convert", "lhco", str(raw), "--chunk-rows", str(n_events // n_parts)]
    args += ["--workers", "2", "-o", str(out)]
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedhex_hpc.cli", *args], stdout=subprocess.DEVNULL, stderr=err
        )
    conversion = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while len(list((out / ".partial").glob("part-*.json"))) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, stderr.read_text()
        time.sleep(0.01)
    workers = _worker_processes(conversion)
    assert len(workers) == 2, workers
    workers[0].send_signal(signal.SIGKILL)
    assert len(list((out / ".partial").glob("part-*.json"))) < n_parts  # killed mid-way
    returncode = proc.wait(timeout=300)
    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    if returncode:  # stopped: with one line, and the same command then finishes
        assert returncode == 2 and len(lines) == 1, stderr.read_text()
        run_cli(*args)
    else:  # Dask ran the killed worker's partition again
        assert not lines, lines
    assert "OK" in verify(out)
    manifest = Manifest.read(out)
    assert sum(sum(c.values()) for c in manifest.splits.values()) == n_events
    # nothing the killed worker was writing is left behind
    shards = {p.relative_to(out).as_posix() for p in (out / "shards").rglob("*") if p.is_file()}
    assert shards == {s.path for s in manifest.shards}


def test_dataset_training_input_in_memory_and_streamed_agree_on_counts(table, tmp_path):
    out = tmp_path / "ds"
    convert(source(table), out, cluster=LOCAL)
    cfg = parse_config(
        {
            "data": {
                "source": "dataset",
                "path": str(out),
                "classes": ["background"],
                "region": "sideband",
                "shuffle_buffer": 2048,
            }
        }
    ).data
    view = DatasetView(cfg)
    rows = view.load("train")
    m = rows.cond[:, 0]
    assert not ((m >= 3.3) & (m < 3.7)).any()
    manifest = Manifest.read(out)
    assert len(rows) < manifest.splits["train"]["background"]

    per_rank = []
    for rank in (0, 1):
        stream = ShardStream(
            view, "train", 256, seed=5, shuffle_buffer=2048, ranks=RankInfo(rank, 2)
        )
        batches = list(stream.epoch(0))
        assert len(batches) == stream.steps_per_epoch
        assert all(len(b) == 256 for b in batches)
        per_rank.append(np.concatenate([b.x for b in batches]))
    both = np.concatenate(per_rank)
    assert len(np.unique(both, axis=0)) == len(both)  # disjoint across ranks
    assert {tuple(r) for r in both} <= {tuple(r) for r in rows.x}
    # resume mid-epoch yields the same remaining batches
    stream = ShardStream(view, "train", 256, seed=5, shuffle_buffer=2048)
    full = [b.x for b in stream.epoch(1)]
    tail = [b.x for b in stream.epoch(1, start_step=3)]
    np.testing.assert_array_equal(np.concatenate(full[3:]), np.concatenate(tail))

    memory = [InMemoryBatches(rows, 100, seed=5, ranks=RankInfo(r, 2)) for r in (0, 1)]
    assert memory[0].steps_per_epoch == memory[1].steps_per_epoch
    orders = [m.order(0) for m in memory]
    assert not set(orders[0]) & set(orders[1])


def test_bad_dataset_inputs(table, tmp_path):
    with pytest.raises(DataError, match="no column 'bb'"):
        ColumnsSource(table, ["a", "bb"], key="events")
    not_hdf5 = tmp_path / "x.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(DataError, match="is not a readable HDF5 file"):
        ColumnsSource(not_hdf5, ["a"])
    out = tmp_path / "ds"
    convert(source(table), out, cluster=LOCAL)
    cfg = parse_config({"data": {"source": "dataset", "path": str(out), "features": ["zz"]}}).data
    with pytest.raises(DataError, match="no column 'zz'"):
        DatasetView(cfg)
    info = json.loads((out / "manifest.json").read_text())
    info["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="format version 99"):
        Manifest.read(out)


def test_format_1_datasets_are_still_read(table, tmp_path):
    out = tmp_path / "ds"
    convert(source(table), out, cluster=LOCAL)
    info = json.loads((out / "manifest.json").read_text())
    info["format_version"] = 1
    for entry in info["sources"]:  # format 1 recorded SHA-256 of the sources
        entry["sha256"] = "ab" * 32
        del entry["blake3"]
    (out / "manifest.json").write_text(json.dumps(info))
    assert Manifest.read(out).format_version == 1
    assert f"sha256 {'ab' * 8}…" in describe(out)
    assert "OK" in verify(out)


def test_write_arrays_writes_the_store_format_and_rejects_bad_arrays(tmp_path):
    columns = [Column("a", "feature"), Column("m", "condition", "TeV")]
    rng = np.random.default_rng(1)
    values = rng.normal(size=(1000, 2))
    labels = (rng.random(1000) < 0.3).astype(np.int64)
    out = tmp_path / "arrays"
    manifest = write_arrays(
        out,
        columns,
        {"train": (values[:800], labels[:800]), "val": (values[800:], labels[800:])},
        source="test",
        options={"made": "here"},
        shard_rows=300,
    )
    assert "OK" in verify(out)
    assert manifest.splits["train"] == {
        "background": int(np.sum(labels[:800] == 0)),
        "signal": int(labels[:800].sum()),
    }
    assert max(s.rows for s in manifest.shards) == 300
    view = DatasetView(parse_config({"data": {"source": "dataset", "path": str(out)}}).data)
    assert len(view.load("val")) == 200 and view.features == ["a"]
    bad = {
        "expected (events, 2) values and one label per event": (values[:, :1], labels),
        "class codes must be 0 (background) or 1 (signal)": (values, labels * 2),
        "row 3 holds NaN or Inf": (np.where(np.arange(1000)[:, None] == 3, np.nan, values), labels),
    }
    for message, split in bad.items():
        with pytest.raises(DataError, match=re.escape(message)):
            write_arrays(tmp_path / "bad", columns, {"train": split}, source="t", options={})
