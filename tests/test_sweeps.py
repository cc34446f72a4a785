"""Sweeps: plan, concurrent tasks, kill and rerun, collect, retry, scheduler files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.schedulers import (
    CondorScheduler,
    LocalScheduler,
    SchedulerError,
    SlurmScheduler,
    Workload,
    load_profile,
)
from fedhex_hpc.schedulers.condor import submitted_clusters
from fedhex_hpc.studies.sweep import SweepFolder, collect, expand, load_spec, run_task, status

from .conftest import cli_imports_tensorflow, run_cli, small_raw

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "data": {"n_train": 512, "n_val": 256, "n_test": 256},
    "flow": {"n_blocks": 1, "hidden_units": [8]},
    "train": {"max_epochs": 1, "batch_size": 256, "threads": 1},
    "evaluate": {"n_kl_samples": 500, "n_generated": 256, "classifier_auc": False, "plots": False},
}


def write_spec(tmp_path: Path, **spec) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(small_raw(**TINY)))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": "base.yaml", **spec}))
    return path


def workload(folder: Path, ids) -> Workload:
    folder = folder.resolve()
    return Workload(
        folder, list(ids), ["sweep", "run", str(folder)], ["sweep", "collect", str(folder)]
    )


def plan(tmp_path: Path, **spec) -> Path:
    """A planned sweep folder, made in this process as `fedhex sweep plan` makes it.

    The command itself is run by the plan and bad-spec tests below.
    """
    out = tmp_path / "sweep"
    parsed, raw = load_spec(write_spec(tmp_path, **spec))
    SweepFolder(out).create(parsed, raw, False, expand(parsed))
    return out


def test_plan_expands_grid_zip_and_repeats_with_stable_ids_and_keys(tmp_path):
    spec_path = write_spec(
        tmp_path,
        grid={"data.target": ["dim2/two_gaussians", "dim2/three_in_row"], "flow.n_blocks": [1, 2]},
        zip={"train.batch_size": [128, 256], "train.learning_rate": [0.001, 0.002]},
        repeats=2,
        summary={"rows": "data.target", "columns": "flow.n_blocks", "metric": "kl"},
    )
    spec, _ = load_spec(spec_path)
    tasks = expand(spec)
    assert len(tasks) == 2 * 2 * 2 * 2
    assert [t.axes["run.seed"] for t in tasks[:4]] == [1, 2, 1, 2]
    assert tasks[2].config.train.batch_size == 256 and tasks[2].config.train.learning_rate == 0.002
    assert len({t.key for t in tasks}) == len(tasks)  # keys derive from the resolved config
    assert [t.key for t in expand(load_spec(spec_path)[0])] == [t.key for t in tasks]
    out = tmp_path / "sweep"
    run_cli("sweep", "plan", str(spec_path), "-o", str(out))
    run_cli("sweep", "plan", str(spec_path), "-o", str(out))  # same plan again: fine
    folder = SweepFolder(out)
    assert folder.config(5) == tasks[5].config
    assert [r.key for r in folder.plan()] == [t.key for t in tasks]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"grid": {"flow.n_block": [1]}}, "unknown grid axis 'flow.n_block'; valid keys: run.name"),
        ({"grid": {"flow.n_blocks": []}}, "grid.flow.n_blocks must be a non-empty list"),
        ({"zip": {"flow.n_blocks": [1, 2], "run.seed": [1]}}, "zip lists must have equal lengths"),
        ({"bogus": 1}, "unknown key bogus"),
        ({"summary": {"rows": "flow.n_blocks"}}, "summary axis 'flow.n_blocks' is not an axis"),
        (
            {"set": {"flow.hidden_units": [8, -1]}},
            "flow.hidden_units[1] must be a positive integer",
        ),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, spec, message):
    result = run_cli(
        "sweep", "plan", str(write_spec(tmp_path, **spec)), "-o", str(tmp_path / "s"), check=False
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_task_outside_plan_other_plan_and_incompatible_folder(tmp_path):
    out = plan(tmp_path, grid={"flow.n_blocks": [1, 2]})
    result = run_cli("sweep", "run", str(out), "--task", "7", check=False)
    assert "task id 7 is outside the plan" in result.stderr and "(0-1)" in result.stderr
    other = run_cli(
        "sweep",
        "plan",
        str(write_spec(tmp_path, grid={"flow.n_blocks": [3]})),
        "-o",
        str(out),
        check=False,
    )
    assert "already holds a different plan" in other.stderr
    meta = json.loads((out / "study.json").read_text())
    meta["format_version"] = 0
    (out / "study.json").write_text(json.dumps(meta))
    result = run_cli("sweep", "status", str(out), check=False)
    assert "with sweep format 0; this version reads format 2" in result.stderr


def test_task_mistakes_are_reported_before_tensorflow_is_imported(tmp_path):
    out = plan(tmp_path, grid={"flow.n_blocks": [1, 2]})
    broken = yaml.safe_load((out / "tasks" / "1.yaml").read_text())
    broken["flow"]["hidden_units"] = [8, -1]
    (out / "tasks" / "1.yaml").write_text(yaml.safe_dump(broken))
    codes, tensorflow = cli_imports_tensorflow(
        ["sweep", "run", str(out), "--task", "7"], ["sweep", "run", str(out), "--task", "1"]
    )
    assert (codes, tensorflow) == ([2, 2], False)
    assert SweepFolder(out).state(1) == "failed"


def test_thirty_two_concurrent_tasks_all_land_in_the_merged_table(tmp_path):
    out = plan(tmp_path, repeats=32, summary={"rows": "run.seed", "metric": "kl"})
    LocalScheduler(jobs=32, threads=1).submit(workload(out, range(32)), load_profile(None), False)
    table = (out / "results.csv").read_text().splitlines()
    assert len(table) == 33
    import pandas as pd

    frame = pd.read_csv(out / "results.csv")
    assert frame["done"].all() and frame["kl"].notna().all()
    assert "32 of 32 tasks done" in collect(out)


def test_killed_task_leaves_a_stale_mark_no_done_record_and_done_tasks_need_force(tmp_path):
    # ~50 checkpoints after the first, where it is killed; the rerun trains the rest
    out = plan(tmp_path, repeats=1, set={"train.max_epochs": 100})
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedhex_hpc.cli", "sweep", "run", str(out), "--task", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*/checkpoints/epoch-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    folder = SweepFolder(out)
    assert folder.result(0) is None
    assert folder.state(0) == "running"  # the marker of the killed process stays
    assert folder.stale(0)
    assert "task 0: running mark is stale" in status(out)
    dry = run_cli("retry", str(out), "--scheduler", "slurm", "--dry-run")
    assert "#SBATCH --array=0\n" in (out / "submit" / "slurm_array.sh").read_text(), dry.stdout
    # the rerun resumes the interrupted run and records the result
    result = run_task(str(out), 0)
    assert result["done"] and folder.state(0) == "done"
    again = run_cli("sweep", "run", str(out), "--task", "0")
    assert "done already (rerun with --force)" in again.stdout
    assert json.loads((out / "results" / "0.json").read_text()) == result


def test_failed_task_shows_its_error_and_retry_resubmits_only_it(tmp_path):
    out = plan(tmp_path, grid={"data.target": ["dim2/two_gaussians", "dim1/gaussian"]})
    run_task(str(out), 0)
    folder = SweepFolder(out)
    # break task 1's config on disk: the task fails with a one-line error
    broken = yaml.safe_load((out / "tasks" / "1.yaml").read_text())
    broken["data"]["target"] = "dim2/nonexistent"
    (out / "tasks" / "1.yaml").write_text(yaml.safe_dump(broken))
    result = run_cli("sweep", "run", str(out), "--task", "1", check=False)
    assert result.returncode == 2
    assert folder.state(1) == "failed"
    text = status(out)
    assert "failed       1  ids 1" in text and "task 1: config error: unknown target" in text
    dry = run_cli("sweep", "retry", str(out), "--scheduler", "slurm", "--dry-run")
    array = (out / "submit" / "slurm_array.sh").read_text()
    assert "#SBATCH --array=1\n" in array
    assert "would run: sbatch --parsable" in dry.stdout


def test_slurm_files_from_a_profile(tmp_path):
    out = plan(tmp_path, repeats=6)
    profile = tmp_path / "site.yaml"
    image = tmp_path / "fedhex.sif"
    image.write_text("image")
    profile.write_text(
        yaml.safe_dump(
            {
                "slurm": {
                    "partition": "gpu",
                    "account": "phys",
                    "gpus_per_task": 1,
                    "array_throttle": 3,
                    "modules": ["cuda/12.4"],
                    "extra_directives": ["--constraint=a100"],
                },
                "container": {"image": str(image)},
            }
        )
    )
    SlurmScheduler().submit(workload(out, range(6)), load_profile(profile), dry_run=True)
    text = (out / "submit" / "slurm_array.sh").read_text()
    for line in (
        "#SBATCH --array=0-5%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=phys",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --constraint=a100",
        "module load cuda/12.4",
        f"apptainer exec --nv {image} fedhex sweep run",
        "/logs/%A_%a.out",
    ):
        assert line in text, line
    assert subprocess.run(["bash", "-n", str(out / "submit" / "slurm_array.sh")]).returncode == 0
    missing = tmp_path / "bad.yaml"
    missing.write_text(yaml.safe_dump({"container": {"image": str(tmp_path / "nope.sif")}}))
    with pytest.raises(ConfigError, match=r"container.image .*nope.sif does not exist"):
        load_profile(missing)
    with pytest.raises(ConfigError, match=r"unknown key slurm\.partitions"):
        (tmp_path / "typo.yaml").write_text("slurm: {partitions: gpu}\n")
        load_profile(tmp_path / "typo.yaml")


def test_condor_submit_description_expands_to_the_plan(tmp_path):
    if os.environ.get("CI") == "true":
        import htcondor2
    else:
        htcondor2 = pytest.importorskip("htcondor2")
    out = plan(tmp_path / "with space", repeats=5)
    ids = [0, 2, 3, 4]
    result = CondorScheduler().submit(workload(out, ids), load_profile(None), dry_run=True)
    submit = htcondor2.Submit((out / "submit" / "tasks.sub").read_text())
    items = list(submit.itemdata())
    assert [int(i["task_id"]) for i in items] == ids
    assert submit["request_cpus"] == "2"
    assert "sweep run" in submit["arguments"]
    assert "FEDHEX_TASK_ID=$(task_id)" in submit["environment"]
    assert "'" in submit["arguments"]  # the path with a space is quoted
    collect_sub = htcondor2.Submit((out / "submit" / "collect.sub").read_text())
    assert "sweep collect" in collect_sub["arguments"]
    dag = (out / "submit" / "sweep.dag").read_text()
    assert "PARENT tasks CHILD collect" in dag
    assert result.commands[0][0] == "condor_submit_dag"


CONDOR_OUTPUTS = Path(__file__).resolve().parent / "data" / "condor"
SHIMS = Path(__file__).resolve().parent / "record_shim"


@pytest.mark.parametrize(
    ("recording", "argv", "clusters"),
    [
        ("condor_submit.out", ["condor_submit", "tasks.sub"], ["1234"]),
        ("condor_submit_two_clusters.out", ["condor_submit", "tasks.sub"], ["1234", "1236"]),
        ("condor_submit_dag.out", ["condor_submit_dag", "-force", "sweep.dag"], ["1235"]),
        ("condor_submit_dag_8.out", ["condor_submit_dag", "sweep.dag"], ["3548"]),
    ],
)
def test_condor_cluster_ids_are_found_in_recorded_outputs(recording, argv, clusters):
    output = (CONDOR_OUTPUTS / recording).read_text()
    assert submitted_clusters(output, argv) == clusters


def test_condor_output_without_a_cluster_is_a_one_line_error():
    output = (CONDOR_OUTPUTS / "condor_submit_dag_no_submit.out").read_text()
    argv = ["condor_submit_dag", "-force", "/s/sweep.dag"]
    with pytest.raises(SchedulerError) as info:
        submitted_clusters(output, argv)
    message = str(info.value)
    assert "`condor_submit_dag -force /s/sweep.dag` reported no 'N job(s) submitted" in message
    assert "-no_submit given, not submitting DAG to HTCondor." in message
    assert "\n" not in message
    with pytest.raises(SchedulerError, match=r"its output: \(no output\)$"):
        submitted_clusters("\n", argv)


def condor_shim_env(tmp_path: Path, recording: str) -> dict[str, str]:
    return {
        "PATH": f"{SHIMS}{os.pathsep}{os.environ['PATH']}",
        "RECORD_SHIM_LOG": str(tmp_path / "calls.log"),
        "RECORD_SHIM_CONDOR_OUTPUT": str(CONDOR_OUTPUTS / recording),
    }


def test_condor_submit_reports_the_dagman_cluster(tmp_path):
    out = plan(tmp_path, repeats=3)
    env = condor_shim_env(tmp_path, "condor_submit_dag.out")
    done = run_cli("submit", str(out), "--scheduler", "condor", env_extra=env)
    dag = out.resolve() / "submit" / "sweep.dag"
    assert f"ran: condor_submit_dag -force {dag}" in done.stdout
    assert "submitted 3 tasks: jobs 1235\n" in done.stdout
    assert (tmp_path / "calls.log").read_text() == f"condor_submit_dag -force {dag}\n"


def test_condor_submit_without_a_cluster_line_exits_2(tmp_path):
    out = plan(tmp_path, repeats=1)
    env = condor_shim_env(tmp_path, "condor_submit_dag_no_submit.out")
    done = run_cli("submit", str(out), "--scheduler", "condor", env_extra=env, check=False)
    assert done.returncode == 2
    error = done.stderr.strip()
    assert error.startswith("scheduler error: `condor_submit_dag -force ")
    assert "reported no 'N job(s) submitted to cluster C.' line" in error
    assert "\n" not in error


def test_bundled_studies_plan(tmp_path):
    for name, small_tasks in (("dim1", 4), ("dim2", 8), ("dim10", 4)):
        spec, _ = load_spec(ROOT / "studies" / f"{name}.yaml", small=True)
        assert len(expand(spec)) == small_tasks
        full, _ = load_spec(ROOT / "studies" / f"{name}.yaml")
        assert len(expand(full)) > small_tasks
