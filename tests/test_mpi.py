"""Real MPI: two Horovod ranks on the CPU, launched with mpirun."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from .ci import require
from .conftest import mpirun, small_raw

HERE = Path(__file__).resolve().parent


def _have_horovod() -> bool:
    try:
        import horovod.tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(autouse=True)
def _mpi_available():
    require(shutil.which("mpirun") is not None, "mpirun (Debian openmpi-bin)")
    require(_have_horovod(), "Horovod built with MPI (make test builds it)")


def train(tmp_path, name, ranks, batch, **train):
    config = small_raw(
        train={
            "batch_size": batch,
            "max_epochs": 3,
            "threads": 1,
            "distributed": "horovod",
            "scale_learning_rate": False,
            "checkpoint_every": 3,
            **train,
        },
        data={"n_train": 4096},
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / name
    mpirun(
        ranks,
        sys.executable,
        str(HERE / "mpi_train.py"),
        str(path),
        str(tmp_path / f"run-{name}"),
        str(out),
    )
    return [list(np.load(f"{out}-rank{r}.npz").values()) for r in range(ranks)]


def test_two_ranks_end_identical_and_match_one_rank_with_the_global_batch(tmp_path):
    two = train(tmp_path, "two", 2, 128)
    for a, b in zip(two[0], two[1], strict=True):
        np.testing.assert_array_equal(a, b)
    (one,) = train(tmp_path, "one", 1, 256)
    # same events per global step, gradients averaged over ranks: equal up to the
    # order of floating-point sums (stated tolerance: 1e-4 absolute on every weight)
    for a, b in zip(two[0], one, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    history = (tmp_path / "run-two" / "history.csv").read_text().splitlines()
    assert len(history) == 4  # header + 3 epochs, written by rank 0 only
