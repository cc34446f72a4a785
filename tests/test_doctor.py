"""``fedhex doctor``: the checks on this machine, paths, rank mapping and the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import h5py
import pytest

from fedhex_hpc.doctor import (
    Check,
    check_directory,
    check_image,
    check_ranks,
    exit_code,
    format_table,
    run_checks,
    storage,
)

BASICS = {"python", "fedhex-hpc", "tensorflow", "tensorflow-probability", "tf-keras", "ranks"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full run (TensorFlow imported once) with a good and a missing data path."""
    tmp = tmp_path_factory.mktemp("doctor")
    checks = run_checks(
        [tmp, tmp / "no-such-dataset"], run_dir=tmp / "runs" / "a", image=tmp / "missing.sif"
    )
    return tmp, checks


def test_run_checks_reports_every_check(report):
    _, checks = report
    assert [c.name for c in checks] == [
        "python",
        "fedhex-hpc",
        "tensorflow",
        "tensorflow-probability",
        "tf-keras",
        "gpus",
        "horovod",
        "launchers",
        "ranks",
        "data",
        "data",
        "run-dir",
        "slurm",
        *(["slurm gpus"] if shutil.which("sinfo") else []),
        "htcondor",
        "htcondor2",
        "apptainer",
        "image",
        "container",
    ]
    assert all(c.status in ("ok", "warn", "FAIL") for c in checks)
    assert all(c.fix for c in checks if c.status != "ok")
    assert not [c for c in checks if c.name in BASICS and c.status == "FAIL"]
    json.dumps([c.to_dict() for c in checks])


def test_onednn_kernels_are_on_unless_turned_off(report):
    _, checks = report
    tensorflow = next(c for c in checks if c.name == "tensorflow")
    assert "oneDNN CPU kernels on (TF_ENABLE_ONEDNN_OPTS=1)" in tensorflow.detail
    code = (
        "import fedhex_hpc._tf; from tensorflow.python.util import _pywrap_util_port as port; "
        "print(port.IsMklEnabled())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    for setting, enabled in ((None, "True"), ("0", "False")):
        run_env = env if setting is None else {**env, "TF_ENABLE_ONEDNN_OPTS": setting}
        proc = subprocess.run(
            [sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True
        )
        assert proc.stdout.split()[-1] == enabled, setting


def test_missing_paths_fail_and_name_the_path(report):
    tmp, checks = report
    data = [c for c in checks if c.name == "data"]
    assert data[0].status == "ok"
    assert data[1].status == "FAIL" and str(tmp / "no-such-dataset") in data[1].detail
    image = next(c for c in checks if c.name == "image")
    assert image.status == "FAIL" and "missing.sif" in image.detail
    assert exit_code(checks) == 1


def test_run_dir_to_be_created_is_judged_by_its_parent(report):
    tmp, checks = report
    run_dir = next(c for c in checks if c.name == "run-dir")
    assert run_dir.status == "ok"
    assert f"to be created in {tmp}" in run_dir.detail


def test_writable_directory_has_working_locking(tmp_path, monkeypatch):
    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    check = check_directory(tmp_path)
    assert check.status == "ok"
    assert "writable" in check.detail and "HDF5 locking ok" in check.detail
    assert list(tmp_path.iterdir()) == []  # the probe file is removed


def test_locking_failure_fails_with_the_export_fix(tmp_path, monkeypatch):
    error = "OSError: Unable to synchronously create file (unable to lock file, errno = 38)"
    monkeypatch.setattr(storage, "_run", lambda *args, **kwargs: (1, f"Traceback\n{error}"))
    check = check_directory(tmp_path, "run-dir")
    assert check.status == "FAIL"
    assert "errno = 38" in check.detail
    assert check.fix == "export HDF5_USE_FILE_LOCKING=FALSE"


def test_read_only_data_directory_is_probed_by_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.os, "access", lambda path, mode: False)
    assert check_directory(tmp_path).status == "warn"  # nothing to read
    (tmp_path / "shards").mkdir()
    with h5py.File(tmp_path / "shards" / "part-00000.h5", "w") as fh:
        fh["x"] = [1.0]
    check = check_directory(tmp_path)
    assert check.status == "ok"
    assert "read-only" in check.detail
    assert check_directory(tmp_path / "run", "run-dir").status == "FAIL"


def test_image_must_exist(tmp_path):
    image = tmp_path / "fedhex.sif"
    assert check_image(image).status == "FAIL"
    image.write_bytes(b"sif")
    assert check_image(image).status == "ok"


def test_table_has_one_line_per_check_and_fixes_below():
    checks = [
        Check("python", "ok", "3.11"),
        Check("gpus", "warn", "TensorFlow sees 0 GPU(s)", "use --gpus-per-task=1"),
        Check("data", "FAIL", "/x does not\nexist", "give an existing path"),
    ]
    lines = format_table(checks).splitlines()
    assert lines[0].split() == ["check", "status", "detail"]
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["python", "ok"],
        ["gpus", "warn"],
        ["data", "FAIL"],
    ]
    assert len({line.index(line.split()[1]) for line in lines[:4]}) == 1  # aligned
    assert lines[4:] == [
        "",
        "fix (gpus): use --gpus-per-task=1",
        "fix (data): give an existing path",
        "",
        "1 ok, 1 warn, 1 FAIL",
    ]
    assert exit_code(checks) == 1
    assert exit_code(checks[:2]) == 0


@pytest.mark.parametrize(
    ("env", "status", "words"),
    [
        ({}, "ok", "single process"),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}, "ok", "outside a job step"),
        (
            {"SLURM_NTASKS": "2", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1"},
            "FAIL",
            "without --mpi=pmix",
        ),
        (
            {
                "SLURM_NTASKS": "2",
                "SLURM_STEP_ID": "0",
                "SLURM_STEP_NUM_TASKS": "2",
                "SLURM_PROCID": "1",
                "SLURM_LOCALID": "1",
                "PMIX_RANK": "1",
            },
            "ok",
            "rank 1 of 2 (local rank 1) under srun",
        ),
        ({"SLURM_STEP_ID": "0", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, "ok", "rank 0 of 1"),
        (
            {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "PMIX_RANK": "0"},
            "FAIL",
            "SLURM_PROCID=1, PMIX_RANK=0",
        ),
        (
            {  # mpirun inside an allocation: SLURM_PROCID is its daemon's, not the rank
                "SLURM_STEP_ID": "1",
                "SLURM_PROCID": "0",
                "OMPI_COMM_WORLD_RANK": "3",
                "OMPI_COMM_WORLD_LOCAL_RANK": "1",
                "OMPI_COMM_WORLD_SIZE": "4",
                "PMIX_RANK": "3",
            },
            "ok",
            "rank 3 of 4 (local rank 1) under mpirun",
        ),
        (
            {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "HOROVOD_SIZE": "4"},
            "FAIL",
            "OMPI_COMM_WORLD_SIZE=2, HOROVOD_SIZE=4",
        ),
        ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "2"}, "FAIL", "do not fit"),
        ({"OMPI_COMM_WORLD_RANK": "x", "OMPI_COMM_WORLD_SIZE": "2"}, "FAIL", "not an integer"),
    ],
)
def test_rank_mapping(env, status, words):
    check = check_ranks(env)
    assert check.status == status, check
    assert words in check.detail
    if status == "FAIL":
        assert check.fix


def test_srun_without_pmix_gets_the_pmix_fix():
    check = check_ranks({"SLURM_NTASKS": "2", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1"})
    assert "--mpi=pmix" in check.fix


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
def test_rank_mapping_under_real_mpirun():
    env = {
        **os.environ,
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    }
    code = "from fedhex_hpc.doctor import check_ranks; print(check_ranks().detail)"
    result = subprocess.run(
        ["mpirun", "-np", "2", sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "rank 0 of 2 (local rank 0) under mpirun",
        "rank 1 of 2 (local rank 1) under mpirun",
    ]


def test_a_cluster_without_gpus_is_told_how_to_submit(slurm_cluster, monkeypatch):
    """The test cluster declares no GPUs: sbatch would refuse --gpus-per-task=1."""
    from fedhex_hpc.doctor import check_slurm_gpus

    for name, value in slurm_cluster.env.items():
        monkeypatch.setenv(name, value)
    check = check_slurm_gpus()
    assert check is not None and check.status == "warn", check
    assert "no partition offers GPUs" in check.detail
    assert "sbatch --gpus-per-task=0 jobs/train_lhco.sh" in check.fix
