"""Shared fixtures: small, fast configurations and a helper to run the CLI."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedhex_hpc.config import Config, parse_config

from .slurm_cluster import slurm_cluster

__all__ = [
    "ROOT",
    "SMALL_LHCO_JOB",
    "cli_imports_tensorflow",
    "mpirun",
    "run_cli",
    "slurm_cluster",
    "small_raw",
]

ROOT = Path(__file__).resolve().parents[1]

#: jobs/train_lhco.sh in a minute or two: the spec's small variant, shrunk further.
SMALL_LHCO_JOB = {
    "FEDHEX_SMALL": "1",
    "FEDHEX_SYNTHETIC_EVENTS": "20000",
    "FEDHEX_N_SIGNAL": "300",
    "FEDHEX_CLASSIFIERS": "trees",
    "FEDHEX_EPOCHS": "2",
    "FEDHEX_SET": (
        "outer_flow.set.flow.n_blocks=2 outer_flow.set.flow.hidden_units=[16,16] "
        "outer_flow.set.train.threads=1 template.n_samples=4000 trees.n_models=2"
    ),
}


def small_raw(**sections: dict) -> dict:
    """A tiny but complete training config as a raw mapping."""
    raw = {
        "run": {"name": "test", "seed": 7},
        "data": {"target": "dim2/two_gaussians", "n_train": 2048, "n_val": 512, "n_test": 1024},
        "flow": {"n_blocks": 2, "hidden_units": [32, 32]},
        "train": {
            "batch_size": 256,
            "max_epochs": 4,
            "checkpoint_every": 2,
            "log_every": 100,
            "deterministic": True,
        },
        "evaluate": {"n_kl_samples": 2000, "n_generated": 1000, "classifier_auc": False},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return raw


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for ``pytest -n 2 --dist loadgroup`` (the Makefile's test run).

    Each file is one group, so its module fixtures (trained flows, written datasets) are
    built once, on one worker. The files that use the session's Slurm cluster (one
    munged, one slurmctld per machine) form one group between them.
    """
    slurm_files = {item.path for item in items if "slurm_cluster" in item.fixturenames}
    for item in items:
        group = "slurm" if item.path in slurm_files else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def small_config() -> Config:
    """A validated tiny config (two 2D Gaussians, 2 blocks, 4 epochs)."""
    return parse_config(small_raw())


def run_cli(
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m fedhex_hpc.cli`` in a subprocess and capture its output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    result = subprocess.run(
        [sys.executable, "-m", "fedhex_hpc.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"fedhex {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def cli_imports_tensorflow(*calls: list[str]) -> tuple[list[int], bool]:
    """Run ``fedhex`` calls in one fresh interpreter: their exit codes, and whether they
    imported TensorFlow (seconds of start-up)."""
    code = (
        "import sys\n"
        "from fedhex_hpc.cli import main\n"
        f"print([main(argv) for argv in {list(calls)!r}])\n"
        "print('tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    codes, imported = result.stdout.strip().splitlines()[-2:]
    return ast.literal_eval(codes), ast.literal_eval(imported)


def mpirun(n: int, *args: str) -> subprocess.CompletedProcess:
    """``mpirun -np n ARGS`` with Open MPI allowed as root and oversubscribed; must succeed."""
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    }
    result = subprocess.run(
        ["mpirun", "-np", str(n), *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result
