"""Through the real Slurm test cluster: the LHCO job with 2 Horovod ranks, preemption
with requeue and resume, and a sweep as a job array with an afterok collect job."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedhex_hpc.studies.sweep import SweepFolder

from .conftest import SMALL_LHCO_JOB, run_cli
from .test_mixlearn import dataset, study
from .test_sweeps import write_spec

__all__ = ["dataset", "study"]  # fixtures shared with the mixlearn tests

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def lhco_features(tmp_path_factory) -> tuple[Path, Path]:
    """A SYNTHETIC R&D features file and extra SR-background file."""
    folder = tmp_path_factory.mktemp("lhco")
    run_cli("data", "generate", "features", "-o", str(folder), "-n", "20000", "--seed", "3")
    run_cli("data", "generate", "extra", "-o", str(folder), "-n", "12000", "--seed", "4")
    return (
        folder / "events_anomalydetection_v2.features.h5",
        folder / "events_anomalydetection_qcd_extra_inneronly_features.h5",
    )


def job_env(work: Path, data: tuple[Path, Path], **extra: str) -> dict[str, str]:
    flow = (
        "outer_flow.set.train.batch_size=128 outer_flow.set.train.deterministic=true "
        "outer_flow.set.train.keep_best_epochs=2"
    )
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin:/usr/sbin:/sbin",
        "FEDHEX_WORK": str(work),
        "FEDHEX_DATA": str(data[0]),
        "FEDHEX_EXTRA": str(data[1]),
        **SMALL_LHCO_JOB,
        "FEDHEX_SET": f"{SMALL_LHCO_JOB['FEDHEX_SET']} {flow}",
        **extra,
    }


def flow_run(work: Path) -> Path:
    """The sideband flow's run folder in the job's study (named by its config's hash)."""
    (run,) = (work / "study" / "shared").glob("outer-*[!k]")
    return run


def submit_lhco(cluster, work: Path, data: tuple[Path, Path], **extra: str) -> int:
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


#: Epochs of the sideband flow in the LHCO jobs: enough that the flow is still training
#: when the preemption test signals the job after the checkpoint of epoch 2.
LHCO_EPOCHS = "12"


@pytest.fixture(scope="module")
def straight_lhco_job(slurm_cluster, lhco_features, tmp_path_factory) -> tuple[Path, str]:
    """The LHCO job with 2 ranks run once, uninterrupted: its work folder and final state.

    Checked on its own and the reference the preempted job must match.
    """
    work = tmp_path_factory.mktemp("straight")
    job = submit_lhco(slurm_cluster, work, lhco_features, FEDHEX_EPOCHS=LHCO_EPOCHS)
    return work, slurm_cluster.wait(job, timeout=1200)


def test_train_lhco_job_with_two_ranks(straight_lhco_job):
    work, state = straight_lhco_job
    log = next(work.glob("job_*.out")).read_text()
    assert state == "COMPLETED", log
    run = flow_run(work)
    for name in ("model/spec.json", "history.csv", "ensemble"):
        assert (run / name).exists(), name
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["ranks"] == 2
    assert "srun --mpi=pmix" in log
    summary = (work / "study" / "summary.md").read_text()
    assert "| cathode trees | 300 |" in summary and "v2.features.h5" in summary
    for suffix in ("png", "pdf"):
        assert (work / "study" / "plots" / f"sic_curves.{suffix}").is_file()


def test_preempted_job_requeues_resumes_and_matches_uninterrupted(
    slurm_cluster, lhco_features, straight_lhco_job, tmp_path
):
    straight, state = straight_lhco_job
    assert state == "COMPLETED"
    interrupted = submit_lhco(
        slurm_cluster, tmp_path / "b", lhco_features, FEDHEX_EPOCHS=LHCO_EPOCHS
    )
    shared = tmp_path / "b" / "study" / "shared"
    deadline = time.monotonic() + 600
    while not list(shared.glob("outer-*/checkpoints/epoch-000002")) and time.monotonic() < deadline:
        time.sleep(0.2)
    # what Slurm does at --signal=B:USR1@300: USR1 to the batch shell only
    slurm_cluster.run("scancel", "--signal=USR1", "--batch", str(interrupted))
    assert slurm_cluster.wait(interrupted, timeout=1200) == "COMPLETED"
    log = "".join(p.read_text() for p in (tmp_path / "b").glob("job_*.out"))
    assert "requeueing job" in log, log
    assert "resuming" in log and "finished steps are skipped" in log
    assert int(slurm_cluster.job_field(interrupted, "Restarts")) == 1
    for a, b in zip(
        model_weights(flow_run(straight)),
        model_weights(flow_run(tmp_path / "b")),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    a, b = (
        json.loads((work / "study" / "results" / "0.json").read_text())
        for work in (straight, tmp_path / "b")
    )
    assert a["max_sic"] == b["max_sic"] and a["auc"] == b["auc"]


def test_lhco_study_as_job_array_with_collect(slurm_cluster, tmp_path):
    from .test_lhco_study import tiny_plan_args

    study = tmp_path / "study"
    run_cli(*tiny_plan_args(study), "--set", "methods=[cathode,idealized,supervised]")
    array_id = submit_and_wait(slurm_cluster, study)
    table = pd.read_csv(study / "results.csv")
    assert sorted(table["method"]) == ["cathode", "idealized", "supervised"]
    assert len(list((study / "logs").glob(f"{array_id}_*.out"))) == 3
    assert (study / "plots" / "sb_scan.pdf").is_file()


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
