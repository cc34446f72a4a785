"""The Slurm test cluster itself: PMIx steps, arrays, dependencies, requeue, Horovod."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shlex
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .slurm_cluster import NODE_CPUS, SlurmCluster, ensure_munge_key, require

PYTHON = shlex.quote(sys.executable)
RANKS = "import os; print(os.environ.get('PMIX_RANK'), os.environ.get('OMPI_COMM_WORLD_RANK'))"


def write_script(path: Path, body: str, *options: str) -> Path:
    """Write an executable bash batch script with ``#SBATCH`` options."""
    header = ["#!/bin/bash", *(f"#SBATCH {option}" for option in options), "set -eu"]
    path.write_text("\n".join(header) + "\n" + body.strip() + "\n")
    path.chmod(0o755)
    return path


def poll(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    """Wait until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_require_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(False, "thing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="thing is required in CI"):
        require(False, "thing")
    require(True, "thing")


def test_munge_key_is_created_private(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root (to chown the munge key)")
    try:
        munge = pwd.getpwnam("munge")
    except KeyError:
        require(False, "the munge user (Debian munge package)")
    key = tmp_path / "etc" / "munge.key"
    ensure_munge_key(key)
    stat = key.stat()
    assert stat.st_mode & 0o777 == 0o400
    assert stat.st_uid == munge.pw_uid
    assert stat.st_size >= 32


def test_node_has_eight_cpus_and_pmix(slurm_cluster: SlurmCluster) -> None:
    node = slurm_cluster.run("sinfo", "-h", "-N", "-o", "%N %c %P").stdout.split()
    assert node == [socket.gethostname().split(".")[0], str(NODE_CPUS), "debug*"]
    plugins = slurm_cluster.run("srun", "--mpi=list")
    assert "pmix" in plugins.stdout + plugins.stderr


def test_two_task_pmix_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "pmix.sh",
        f"""
srun --mpi=pmix hostname > hosts.txt
srun --mpi=pmix {PYTHON} -c {shlex.quote(RANKS)} > ranks.txt
""",
        "--ntasks=2",
        "--output=pmix.out",
    )
    job = slurm_cluster.sbatch(script)
    assert slurm_cluster.wait(job) == "COMPLETED", (tmp_path / "pmix.out").read_text()
    assert slurm_cluster.job_field(job, "ExitCode") == "0:0"
    hosts = (tmp_path / "hosts.txt").read_text().split()
    assert hosts == [socket.gethostname().split(".")[0]] * 2
    ranks = sorted((tmp_path / "ranks.txt").read_text().splitlines())
    assert [line.split()[0] for line in ranks] == ["0", "1"]


def test_array_runs_concurrently_then_dependency(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    # Each element waits until all elements have started: only passes if all 8 run at once.
    array = write_script(
        tmp_path / "array.sh",
        f"""
echo "$SLURM_ARRAY_TASK_ID" > "task_$SLURM_ARRAY_TASK_ID.txt"
for _ in $(seq 600); do
    [ "$(ls task_*.txt | wc -l)" -eq {NODE_CPUS} ] && exit 0
    sleep 0.5
done
exit 1
""",
        f"--array=0-{NODE_CPUS - 1}",
        "--output=array_%a.out",
    )
    after = write_script(tmp_path / "after.sh", "cat task_*.txt | sort -n > after.txt")
    array_job = slurm_cluster.sbatch(array)
    after_job = slurm_cluster.sbatch(after, f"--dependency=afterok:{array_job}")

    assert slurm_cluster.wait(array_job) == "COMPLETED"
    states = {record["JobState"] for record in slurm_cluster.records(array_job)}
    assert states == {"COMPLETED"}
    assert slurm_cluster.wait(after_job) == "COMPLETED"
    expected = [str(task) for task in range(NODE_CPUS)]
    assert (tmp_path / "after.txt").read_text().split() == expected


def test_requeue_running_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    marker = tmp_path / "runs.txt"
    script = write_script(
        tmp_path / "requeue.sh",
        f"""
echo "run ${{SLURM_RESTART_COUNT:-0}}" >> {shlex.quote(str(marker))}
if [ "${{SLURM_RESTART_COUNT:-0}}" -eq 0 ]; then sleep 600; fi
""",
        "--output=requeue.out",
        "--open-mode=append",
    )
    job = slurm_cluster.sbatch(script)
    poll(lambda: marker.exists() and slurm_cluster.job_state(job) == "RUNNING", "first run")
    slurm_cluster.run("scontrol", "requeue", str(job))
    assert slurm_cluster.wait(job) == "COMPLETED"
    assert slurm_cluster.job_field(job, "Restarts") == "1"
    assert marker.read_text().splitlines() == ["run 0", "run 1"]


def test_horovod_two_ranks_via_srun(slurm_cluster: SlurmCluster) -> None:
    require(importlib.util.find_spec("horovod") is not None, "Horovod built with MPI")
    code = "import horovod.tensorflow as hvd; hvd.init(); print(hvd.rank(), hvd.size())"
    result = slurm_cluster.run("srun", "--mpi=pmix", "-n", "2", sys.executable, "-c", code)
    ranks = sorted(line for line in result.stdout.splitlines() if line.endswith(" 2"))
    assert ranks == ["0 2", "1 2"], result.stdout + result.stderr
