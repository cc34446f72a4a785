"""The run folder's format version."""

from __future__ import annotations

import json

from fedhex_hpc.cli import main
from fedhex_hpc.config import parse_config
from fedhex_hpc.runs import RunDir
from fedhex_hpc.runs.rundir import FORMAT_VERSION

from .conftest import small_raw


def test_a_run_made_by_a_newer_version_is_a_one_line_error(tmp_path, capsys):
    run = RunDir.create(tmp_path / "run", parse_config(small_raw()))
    made = json.loads(run.format_file.read_text())
    assert made["format_version"] == FORMAT_VERSION
    RunDir.open(run.path)
    run.format_file.write_text(json.dumps({"format_version": 9, "package_version": "9.0"}))
    assert main(["evaluate", str(run.path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "made by fedhex-hpc 9.0 with run format 9" in error
    assert f"reads format {FORMAT_VERSION}" in error and "\n" not in error


def test_a_run_without_run_json_is_read_as_format_1(tmp_path):
    run = RunDir.create(tmp_path / "run", parse_config(small_raw()))
    run.format_file.unlink()
    assert RunDir.open(run.path).config() == parse_config(small_raw())


def test_a_run_directory_that_cannot_be_written_is_a_one_line_error(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    config = tmp_path / "c.yaml"
    config.write_text("train: {max_epochs: 1}\n")
    assert main(["train", str(config), "--run-dir", str(blocked / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert "cannot create the run directory" in error and "Not a directory" in error
    assert "\n" not in error
