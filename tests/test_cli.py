"""The ``fedhex`` command end to end, in subprocesses like a user or job script runs it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import yaml

from fedhex_hpc.errors import PREEMPTED_EXIT_CODE

from .conftest import cli_imports_tensorflow, run_cli, small_raw


def write_config(path, **sections):
    path.write_text(yaml.safe_dump(small_raw(**sections)))
    return path


def test_train_sample_evaluate(tmp_path):
    config = write_config(tmp_path / "c.yaml", evaluate={"classifier_auc": True})
    run = tmp_path / "run"
    out = run_cli("train", str(config), "--run-dir", str(run), "--set", "train.max_epochs=3")
    assert "KL(target||model)" in out.stdout
    for name in ("config.yaml", "environment.json", "history.csv", "metrics.json", "status.json"):
        assert (run / name).is_file(), name
    assert (run / "model" / "spec.json").is_file()
    assert {p.name for p in (run / "plots").iterdir()} == {
        "loss.png",
        "marginals.png",
        "density.png",
    }
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["kl"]["value"] > 0 and metrics["kl"]["stderr"] > 0
    assert 0.0 <= metrics["classifier_auc"]["value"] <= 1.0
    assert [f["name"] for f in metrics["features"]] == ["x", "y"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["max_epochs"] == 3

    run_cli("sample", str(run), "-n", "1234", "-o", str(tmp_path / "s.h5"))
    with h5py.File(tmp_path / "s.h5") as fh:
        assert sorted(fh) == ["x", "y"]
        assert fh["x"].shape == (1234,)

    again = run_cli("evaluate", str(run))
    assert "test log-likelihood" in again.stdout

    exported = run_cli("export", str(run), "-o", str(tmp_path / "saved"))
    assert "exported" in exported.stdout and (tmp_path / "saved" / "saved_model.pb").is_file()

    # a rerun never silently reuses the finished run
    clash = run_cli("train", str(config), "--run-dir", str(run), check=False)
    assert clash.returncode == 2
    assert clash.stderr.strip().endswith("or choose another --run-dir")


def test_conditional_sampling_from_values_and_file(tmp_path):
    config = write_config(
        tmp_path / "c.yaml", data={"target": "cond/line"}, train={"max_epochs": 1}
    )
    run = tmp_path / "run"
    run_cli("train", str(config), "--run-dir", str(run), "--no-evaluate")
    run_cli(
        "sample",
        str(run),
        "-n",
        "100",
        "--cond",
        "0.5,0.5",
        "--cond",
        "0.2,0.2",
        "-o",
        str(tmp_path / "a.h5"),
    )
    with h5py.File(tmp_path / "a.h5") as fh:
        assert fh["x"].shape == (200,)
        np.testing.assert_array_equal(fh["cx"][:100], 0.5)
    np.savez(tmp_path / "cond.npz", cx=np.linspace(0, 1, 300), cy=np.linspace(0, 1, 300))
    run_cli(
        "sample", str(run), "--cond-file", str(tmp_path / "cond.npz"), "-o", str(tmp_path / "b.h5")
    )
    with h5py.File(tmp_path / "b.h5") as fh:
        assert fh["y"].shape == (300,)


def test_user_mistakes_are_one_line_errors(tmp_path):
    config = write_config(tmp_path / "c.yaml", flow={"hidden_units": [16, -3]})
    cases = [
        (
            ("train", str(config)),
            "config error: flow.hidden_units[1] must be a positive integer, got -3",
        ),
        (("train", str(tmp_path / "missing.yaml")), "does not exist"),
        (("evaluate", str(tmp_path)), "is not a fedhex run (no config.yaml)"),
        (("evaluate", str(tmp_path / "nowhere")), "does not exist"),
        (("sample", str(tmp_path), "-o", "x.h5"), "give -n N"),
    ]
    nan_file = tmp_path / "nan.npz"
    values = np.ones(100)
    values[[3, 50]] = np.nan
    np.savez(nan_file, a=values, b=np.ones(100))
    data = write_config(
        tmp_path / "d.yaml", data={"source": "file", "path": str(nan_file), "features": ["a", "b"]}
    )
    cases.append(
        (
            ("train", str(data), "--run-dir", str(tmp_path / "r")),
            "has 2 of 100 rows with NaN or Inf values",
        )
    )
    wrong = write_config(
        tmp_path / "w.yaml", data={"source": "file", "path": str(nan_file), "features": ["a", "bb"]}
    )
    cases.append(
        (
            ("train", str(wrong), "--run-dir", str(tmp_path / "r2")),
            "no column 'bb' (did you mean 'b'?)",
        )
    )
    for args, message in cases:
        result = run_cli(*args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_mistakes_in_arguments_are_reported_before_tensorflow_is_imported(tmp_path):
    # a typo is answered in a second, not after TensorFlow's start-up
    codes, tensorflow = cli_imports_tensorflow(
        ["train", str(tmp_path / "missing.yaml")],
        ["evaluate", str(tmp_path)],
        ["sample", str(tmp_path), "-o", "x.h5"],
    )
    assert (codes, tensorflow) == ([2, 2, 2], False)


def test_targets_list():
    out = run_cli("targets", "list").stdout
    assert "dim2/three_in_row" in out and "cond/gauss_exp_bkg" in out


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_signal_checkpoints_and_resume_matches_uninterrupted(tmp_path):
    config = write_config(tmp_path / "c.yaml", train={"max_epochs": 30, "checkpoint_every": 1})
    straight = tmp_path / "straight"
    run_cli("train", str(config), "--run-dir", str(straight), "--no-evaluate")

    run = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedhex_hpc.cli",
            "train",
            str(config),
            "--run-dir",
            str(run),
            "--no-evaluate",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: (run / "checkpoints" / "epoch-000002").is_dir())
    proc.send_signal(signal.SIGUSR1)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == PREEMPTED_EXIT_CODE, stderr
    assert "continue with --resume" in stderr
    assert json.loads((run / "status.json").read_text())["state"] == "preempted"

    run_cli("train", str(config), "--resume", str(run), "--no-evaluate")
    a = h5py_free_weights(straight)
    b = h5py_free_weights(run)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def h5py_free_weights(run):
    from fedhex_hpc.flows import load_flow

    return [v.numpy() for v in load_flow(run / "model").variables]
