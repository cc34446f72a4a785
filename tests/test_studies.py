"""The studies layer: the registry, commands that work on any study folder, ``sweep best``,
bundled files by name, and a wheel install that renders job scripts."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.resources import bundled_names, resolve
from fedhex_hpc.studies.registry import KINDS, open_study

from .conftest import run_cli
from .test_sweeps import plan

ROOT = Path(__file__).resolve().parents[1]
PIP = (sys.executable, "-m", "pip")


def test_open_study_tells_the_kind_or_says_what_is_wrong(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"is not a study folder .* study kinds: sweep, mixlearn, interpolation, toys, "
        r"scan, lhco_anomaly",
    ):
        open_study(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"kind": "tea", "format_version": 1}))
    with pytest.raises(
        ConfigError,
        match="unknown kind 'tea'; study kinds: sweep, mixlearn, interpolation, toys, "
        "scan, lhco_anomaly",
    ):
        open_study(tmp_path)
    (tmp_path / "study.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a study marker"):
        open_study(tmp_path)
    result = run_cli("status", str(tmp_path), check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_sweep_through_the_generic_commands_and_best(tmp_path):
    out = plan(
        tmp_path,
        grid={"flow.n_blocks": [1, 2]},
        repeats=2,
        summary={"rows": "flow.n_blocks", "metric": "kl"},
    )
    assert open_study(out) is KINDS["sweep"]
    run_cli("submit", str(out), "--scheduler", "local", "--jobs", "2")
    status = run_cli("status", str(out)).stdout
    assert "sweep study tiny" in status and "done         4" in status
    assert "4 of 4 tasks done" in run_cli("collect", str(out)).stdout
    assert (out / "losses.png").is_file() and (out / "losses.pdf").is_file()
    again = run_cli("submit", str(out), "--scheduler", "local", check=False)
    assert again.returncode == 2 and "no tasks to submit" in again.stderr

    table = pd.read_csv(out / "results.csv")
    run_cli("sweep", "best", str(out), "--metric", "kl")
    best = json.loads((out / "best.json").read_text())
    winner = table.loc[table["kl"].idxmin()]
    assert best["lowest"] is True and best["best"][0]["task_id"] == winner["task_id"]
    assert Path(best["best"][0]["model"]).is_dir()

    run_cli("sweep", "best", str(out), "--metric", "kl", "--max", "--by", "flow.n_blocks")
    picks = json.loads((out / "best.json").read_text())["best"]
    assert [p["flow.n_blocks"] for p in picks] == [1, 2]
    for pick in picks:
        group = table[table["flow.n_blocks"] == pick["flow.n_blocks"]]
        assert pick["task_id"] == group.loc[group["kl"].idxmax(), "task_id"]

    for args, message in (
        (["--metric", "epochs"], "does not rank runs: say --min or --max"),
        (["--metric", "kll"], "unknown metric 'kll'"),
        (["--metric", "kl", "--by", "flow.n_block"], "'flow.n_block' is not an axis"),
    ):
        result = run_cli("sweep", "best", str(out), *args, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_bundled_files_by_name_from_any_folder(tmp_path):
    assert {"lhco/anode", "dim2/three_in_row", "demo/dim2_small"} <= set(bundled_names("config"))
    assert {"dim2", "mixlearn"} <= set(bundled_names("study"))
    assert "test-cluster" in bundled_names("profile")
    assert resolve("config", "lhco/anode").read_text().startswith(("#", "run", "data", "flow"))
    with pytest.raises(ConfigError, match=r"did you mean 'lhco/anode'\?"):
        resolve("config", "lhco/anod")
    result = run_cli("sweep", "plan", "dim2", "--small", "-o", "plan", cwd=tmp_path)
    assert "8 tasks" in result.stdout
    result = run_cli("train", "dim2/three_in_rwo", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "did you mean 'dim2/three_in_row'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_wheel_install_renders_slurm_and_condor_scripts(tmp_path):
    """No checkout beside it: the templates, profiles and specs come from the package."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies come from the test environment; fedhex_hpc itself only from the wheel
    (purelib / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [*PIP, "install", "-q", "--no-deps", "--target", str(purelib), *map(str, wheels.glob("*"))],
        check=True,
        capture_output=True,
    )
    python = str(venv / "bin" / "python")
    work = tmp_path / "elsewhere"
    work.mkdir()

    def fedhex(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [python, "-m", "fedhex_hpc.cli", *args],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )

    where = subprocess.run(
        [python, "-c", "import fedhex_hpc; print(fedhex_hpc.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(purelib)), where
    fedhex("sweep", "plan", "dim2", "--small", "-o", "sweep")
    out = fedhex(
        "submit", "sweep", "--scheduler", "slurm", "--profile", "test-cluster", "--dry-run"
    ).stdout
    assert "would run: sbatch --parsable" in out
    array = (work / "sweep" / "submit" / "slurm_array.sh").read_text()
    assert "#SBATCH --array=0-7" in array and "task" in array
    fedhex("submit", "sweep", "--scheduler", "condor", "--dry-run")
    assert (work / "sweep" / "submit" / "sweep.dag").is_file()
