"""Data-parallel set-up errors and rank bookkeeping that need no launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedhex_hpc.data import Arrays
from fedhex_hpc.data.batches import InMemoryBatches, RankInfo
from fedhex_hpc.errors import DataError
from fedhex_hpc.train.distributed import SingleProcess, launcher_size, setup_distributed

ROOT = Path(__file__).resolve().parents[1]


def test_horovod_requested_but_missing_is_one_line():
    code = (
        "import sys; sys.modules['horovod'] = None\n"
        "from fedhex_hpc.cli import main\n"
        "sys.exit(main(['train', sys.argv[1], '--set', 'train.distributed=horovod', "
        "'--run-dir', sys.argv[2]]))"
    )
    config = ROOT / "configs" / "demo" / "dim2_small.yaml"
    result = subprocess.run(
        [sys.executable, "-c", code, str(config), os.devnull + "-run"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "train.distributed is 'horovod' but Horovod cannot be imported" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_auto_is_single_process_without_a_launcher(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "HOROVOD_SIZE", "SLURM_STEP_ID"):
        monkeypatch.delenv(name, raising=False)
    assert launcher_size() == 1
    assert isinstance(setup_distributed("auto"), SingleProcess)
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    assert launcher_size() == 4


def test_too_few_events_for_the_ranks_is_one_line():
    data = Arrays(np.zeros((100, 2), np.float32))
    with pytest.raises(DataError, match="100 training events are too few for batch size 64 on 2"):
        InMemoryBatches(data, 64, seed=1, ranks=RankInfo(0, 2))


def test_job_script_checks_inputs_before_using_the_allocation(tmp_path):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "FEDHEX_WORK": str(tmp_path),
        "FEDHEX_DATA": str(tmp_path / "missing.h5"),
        "SLURM_JOB_ID": "123",
    }
    result = subprocess.run(
        ["bash", str(ROOT / "jobs" / "train_lhco.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"FEDHEX_DATA={tmp_path / 'missing.h5'} does not exist" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was started
    env.pop("FEDHEX_DATA")
    result = subprocess.run(
        ["bash", str(ROOT / "jobs" / "train_lhco.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "set FEDHEX_DATA" in result.stderr
