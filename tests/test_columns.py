"""Named columns of numpy and HDF5 files: misspelled keys and columns are one-line errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from fedhex_hpc.cli import main
from fedhex_hpc.data.columns import read_columns
from fedhex_hpc.errors import DataError

from .conftest import small_raw


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "table.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as fh:
        events = fh.create_group("events")
        events["a"] = rng.normal(size=200)
        events["b"] = rng.normal(size=200)
        fh.create_group("meta")
    return path


def test_misspelled_key_names_the_file_and_the_nearest_keys(table: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        read_columns(table, ["a"], "evnts")
    assert str(excinfo.value) == (
        f"data error: {table}: no key 'evnts' (did you mean 'events'?); "
        "keys in the file: events, meta"
    )


def test_nested_key_is_read(table: Path) -> None:
    with h5py.File(table, "a") as fh:
        fh["meta/inner/a"] = np.arange(3.0)
    assert read_columns(table, ["a"], "meta/inner")["a"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(DataError, match=r"no key 'meta/iner' \(did you mean 'meta/inner'"):
        read_columns(table, ["a"], "meta/iner")


def test_misspelled_key_in_a_training_config_is_one_line(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = {"source": "file", "path": str(table), "key": "evnts", "features": ["a", "b"]}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(small_raw(data=data)))
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"data error: {table}: no key 'evnts' (did you mean 'events'?); "
        "keys in the file: events, meta"
    ]
