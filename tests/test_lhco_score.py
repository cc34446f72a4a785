"""``fedhex lhco score``: a done task's scores of a dataset, the same on two MPI ranks as on
one process and the ones the task evaluated; bad input is a one-line error."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fedhex_hpc.data.convert import write_arrays
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.shards import open_shard
from fedhex_hpc.data.sources.base import Column
from fedhex_hpc.evaluate.anomaly import sic_metrics
from fedhex_hpc.studies.lhco_anomaly.score import score_dataset
from fedhex_hpc.studies.steps.ranks import SingleRank

from .ci import require
from .conftest import mpirun, run_cli
from .test_lhco_study import tiny_plan_args


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A tiny study of two idealized tasks (without and with 2 noise inputs); task 1 run."""
    study = tmp_path_factory.mktemp("score") / "study"
    run_cli(*tiny_plan_args(study), "--set", "methods=[idealized]", "--set", "noise=[0,2]")
    run_cli("task", str(study), "--task", "1")
    return study


def _test_split(study: Path) -> Path:
    (prepared,) = [p for p in (study / "shared").glob("prepare-*") if p.is_dir()]
    return prepared / "test"


def _rows(folder: Path) -> tuple[Manifest, np.ndarray, np.ndarray]:
    """Manifest, rows in shard order and their labels (1 signal) of a test split."""
    manifest = Manifest.read(folder)
    rows, labels = [], []
    for shard in manifest.shards_of("test"):
        with open_shard(folder / shard.path) as fh:
            rows.append(fh["data"][:])
        labels.append(np.full(len(rows[-1]), shard.cls == "signal"))
    return manifest, np.concatenate(rows), np.concatenate(labels)


def test_score_on_two_mpi_ranks_equals_one_process_and_the_task(study, tmp_path):
    require(shutil.which("mpirun") is not None, "mpirun (Debian openmpi-bin)")
    require(importlib.util.find_spec("mpi4py") is not None, "mpi4py (the hpc extra)")
    dataset = _test_split(study)
    command = [
        *(sys.executable, "-m", "fedhex_hpc.cli", "lhco", "score"),
        *(str(study), "--task", "1", "--dataset", str(dataset), "--block-rows", "1000"),
        *("-o", str(tmp_path / "two")),
    ]
    result = mpirun(2, *command)
    assert "scored rows of test on 2 rank(s)" in result.stdout
    two_manifest, two, two_labels = _rows(tmp_path / "two")
    # about 9k background rows in 1000-row blocks and one block of signal: rank 0
    # scores background only, rank 1 the rest of it and the signal
    assert [s.path for s in two_manifest.shards] == [
        "shards/test/background/part-00000.h5",
        "shards/test/background/part-00001.h5",
        "shards/test/signal/part-00001.h5",
    ]
    one_manifest = score_dataset(study, 1, dataset, tmp_path / "one", comm=SingleRank())
    _, one, one_labels = _rows(tmp_path / "one")
    np.testing.assert_array_equal(two, one)
    np.testing.assert_array_equal(two_labels, one_labels)
    assert two_manifest.splits == one_manifest.splits
    assert two_manifest.stored_columns == [*Manifest.read(dataset).stored_columns, "score"]
    # the input rows, each with the score the task evaluated it with
    _, inputs, labels = _rows(dataset)
    np.testing.assert_array_equal(one[:, :-1], inputs)
    np.testing.assert_array_equal(one_labels, labels)
    task_auc = json.loads((study / "results" / "1.json").read_text())["auc"]
    assert sic_metrics(one[:, -1], labels.astype(int))["auc"] == pytest.approx(task_auc, abs=1e-6)


def test_a_task_not_done_and_a_dataset_without_its_columns_are_one_line_errors(study, tmp_path):
    dataset = _test_split(study)
    result = run_cli(
        *("lhco", "score", str(study), "--task", "0", "--dataset", str(dataset)),
        *("-o", str(tmp_path / "out")),
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "task 0 is pending, not done; run `fedhex task" in line
    thin = tmp_path / "thin"
    values = np.ones((10, 2))
    columns = [Column("mj1", "feature"), Column("mjj", "condition")]
    write_arrays(thin, columns, {"test": (values, np.zeros(10))}, source="t", options={})
    result = run_cli(
        *("lhco", "score", str(study), "--task", "1", "--dataset", str(thin)),
        *("-o", str(tmp_path / "out")),
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "no column delta_mj, tau21_j1, tau21_j2, which task 1 (idealized" in line
    assert not (tmp_path / "out").exists()
