"""Through the real Slurm test cluster: the LHCO job with 2 Horovod ranks, preemption
with requeue and resume, and a sweep as a job array with an afterok collect job."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedhex_hpc.studies.sweep import SweepFolder

from .conftest import run_cli
from .test_mixlearn import dataset, study
from .test_sweeps import write_spec

__all__ = ["dataset", "study"]  # fixtures shared with the mixlearn tests

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)
TINY_FLOW = "flow.n_blocks=2 flow.hidden_units=[16,16] train.threads=1 train.deterministic=true"


@pytest.fixture(scope="module")
def lhco_features(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lhco")
    run_cli("data", "generate", "features", "-o", str(folder), "-n", "12000", "--seed", "3")
    return folder / "events_anomalydetection_v2.features.h5"


def job_env(work: Path, data: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin:/usr/sbin:/sbin",
        "FEDHEX_WORK": str(work),
        "FEDHEX_DATA": str(data),
        "FEDHEX_SET": f"{TINY_FLOW} train.batch_size=128 evaluate.n_generated=2000",
        **extra,
    }


def submit_lhco(cluster, work: Path, data: Path, **extra: str) -> int:
    work.mkdir(parents=True, exist_ok=True)  # Slurm opens the --output file there
    return cluster.sbatch(
        ROOT / "jobs" / "train_lhco.sh",
        "--ntasks=2",
        "--ntasks-per-node=2",
        "--cpus-per-task=1",
        "--gpus-per-task=0",
        "--mem=2G",
        f"--output={work}/job_%j.out",
        cwd=work,  # an unrelated folder: the job must not need the checkout
        env_extra=job_env(work, data, **extra),
    )


def model_weights(run: Path) -> list[np.ndarray]:
    from fedhex_hpc.flows import load_flow

    return [v.numpy() for v in load_flow(run / "model").variables]


def submit_and_wait(cluster, folder: Path) -> int:
    """``fedhex submit --scheduler slurm``; wait for the array and its collect job."""
    out = run_cli(
        "submit",
        str(folder),
        "--scheduler",
        "slurm",
        "--profile",
        str(ROOT / "hpc" / "profiles" / "test-cluster.yaml"),
        env_extra={**cluster.env, "PATH": f"{VENV_BIN}:{cluster.env['PATH']}"},
    )
    array_id, collect_id = (int(x) for x in out.stdout.split("jobs ")[-1].split(", "))
    assert cluster.wait(array_id, timeout=1200) == "COMPLETED"
    assert cluster.wait(collect_id, timeout=600) == "COMPLETED"
    return array_id


def test_train_lhco_job_with_two_ranks(slurm_cluster, lhco_features, tmp_path):
    job = submit_lhco(slurm_cluster, tmp_path, lhco_features, FEDHEX_EPOCHS="3")
    state = slurm_cluster.wait(job, timeout=900)
    log = next(tmp_path.glob("job_*.out")).read_text()
    assert state == "COMPLETED", log
    run = tmp_path / "run"
    for name in ("model/spec.json", "history.csv", "metrics.json", "samples_signal_region.h5"):
        assert (run / name).exists(), name
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["ranks"] == 2
    assert "srun --mpi=pmix" in log


def test_preempted_job_requeues_resumes_and_matches_uninterrupted(
    slurm_cluster, lhco_features, tmp_path
):
    straight = submit_lhco(slurm_cluster, tmp_path / "a", lhco_features, FEDHEX_EPOCHS="12")
    interrupted = submit_lhco(slurm_cluster, tmp_path / "b", lhco_features, FEDHEX_EPOCHS="12")
    checkpoints = tmp_path / "b" / "run" / "checkpoints"
    deadline = time.monotonic() + 600
    while not (checkpoints / "epoch-000002").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    # what Slurm does at --signal=B:USR1@300: USR1 to the batch shell only
    slurm_cluster.run("scancel", "--signal=USR1", "--batch", str(interrupted))
    for job in (straight, interrupted):
        assert slurm_cluster.wait(job, timeout=1200) == "COMPLETED"
    log = "".join(p.read_text() for p in (tmp_path / "b").glob("job_*.out"))
    assert "checkpoint written; requeueing job" in log, log
    assert "resuming" in log
    assert int(slurm_cluster.job_field(interrupted, "Restarts")) == 1
    for a, b in zip(
        model_weights(tmp_path / "a" / "run"), model_weights(tmp_path / "b" / "run"), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_sweep_as_job_array_with_collect(slurm_cluster, tmp_path):
    spec = write_spec(
        tmp_path,
        grid={"data.target": ["dim2/two_gaussians", "dim2/three_in_row"], "flow.n_blocks": [1, 2]},
        repeats=2,
        summary={"rows": "data.target", "columns": "flow.n_blocks", "metric": "kl"},
    )
    sweep = tmp_path / "sweep"
    run_cli("sweep", "plan", str(spec), "-o", str(sweep))
    array_id = submit_and_wait(slurm_cluster, sweep)
    folder = SweepFolder(sweep)
    assert all(folder.state(r.task_id) == "done" for r in folder.plan())
    assert (sweep / "summary.md").read_text().count("|") > 10
    assert len(list((sweep / "logs").glob(f"{array_id}_*.out"))) == 8


def test_mixlearn_rows_as_a_job_array(slurm_cluster, study):
    submit_and_wait(slurm_cluster, study)
    import pandas as pd

    table = pd.read_csv(study / "training.plan.csv")
    assert table["done"].all() and table["accuracy"].between(0, 1).all()
    again = run_cli("submit", str(study), "--scheduler", "slurm", check=False)
    assert "no tasks to submit" in again.stderr
