"""MiniBooNESource on small synthetic files in the layout of ``MiniBooNE_PID.txt``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedhex_hpc.data.sources.miniboone import N_FEATURES, OUTLIER, MiniBooNESource
from fedhex_hpc.errors import ConfigError, DataError

N_SIGNAL, N_BACKGROUND = 1000, 2000
#: Features whose smallest value repeats among the signal events: MAF drops them.
DISCRETE = (3, 17, 42)
#: Events made entirely of -999, and one event with a single -999.
OUTLIER_EVENTS = (5, 500, 999, 1200, 2500)
PARTIAL_OUTLIER = (1800, 10)


def synthetic_values(seed: int = 0) -> np.ndarray:
    """Events with discrete features, decoys the MAF rule keeps, and outliers."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(N_SIGNAL + N_BACKGROUND, N_FEATURES))
    values[:, DISCRETE] = rng.integers(0, 4, size=(len(values), len(DISCRETE)))
    values[:100, 8] = 0.5  # repeated, but not the smallest value: kept
    values[N_SIGNAL:, 25] = rng.integers(-5, 0, size=N_BACKGROUND)  # discrete in background only
    values[list(OUTLIER_EVENTS)] = OUTLIER
    values[PARTIAL_OUTLIER] = OUTLIER
    return values


def file_lines(values: np.ndarray, n_signal: int) -> list[str]:
    """The UCI text layout: a count line, then one event per line."""
    rows = ["".join(f"{v:14.6E}" for v in row) for row in values]
    return [f"{n_signal} {len(values) - n_signal}", *rows]


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` with a final newline."""
    path.write_text("\n".join(lines) + "\n")
    return path


def read_all(source: MiniBooNESource) -> pd.DataFrame:
    """Every partition, read through a pickle round trip, concatenated."""
    frames = [pickle.loads(pickle.dumps(p.read))() for p in source.partitions()]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3000-event synthetic MiniBooNE file."""
    path = tmp_path_factory.mktemp("miniboone") / "MiniBooNE_PID.txt"
    return write_lines(path, file_lines(synthetic_values(), N_SIGNAL))


@pytest.fixture(scope="module")
def written(data_file: Path) -> np.ndarray:
    """The values as written to the file (rounded by the text format)."""
    return np.loadtxt(data_file, skiprows=1)


def test_outliers_dropped_and_classes_labelled(data_file: Path, written: np.ndarray) -> None:
    source = MiniBooNESource(data_file)
    frame = read_all(source)
    keep = ~(written == OUTLIER).any(axis=1)
    assert [c.name for c in source.columns] == [f"f{i}" for i in range(N_FEATURES)] + ["class"]
    assert source.columns[-1].role == "class" and source.source_files() == [data_file]
    assert frame["class"].value_counts().to_dict() == {1: N_SIGNAL - 3, 0: N_BACKGROUND - 3}
    assert (frame["class"].to_numpy()[: N_SIGNAL - 3] == 1).all()
    np.testing.assert_array_equal(frame.drop(columns="class").to_numpy(), written[keep])
    assert (frame.drop(columns="class").dtypes == np.float64).all()


def test_outliers_kept_when_asked(data_file: Path, written: np.ndarray) -> None:
    source = MiniBooNESource(data_file, drop_outliers=False)
    frame = read_all(source)
    assert sum(p.rows for p in source.partitions()) == len(frame) == N_SIGNAL + N_BACKGROUND
    assert frame["class"].sum() == N_SIGNAL
    np.testing.assert_array_equal(frame.drop(columns="class").to_numpy(), written)


def test_discrete_features_dropped_like_maf(data_file: Path, written: np.ndarray) -> None:
    source = MiniBooNESource(data_file, drop_discrete=True)
    kept = [i for i in range(N_FEATURES) if i not in DISCRETE]
    frame = read_all(source)
    assert [c.name for c in source.columns] == [f"f{i}" for i in kept] + ["class"]
    keep = ~(written == OUTLIER).any(axis=1)
    np.testing.assert_array_equal(frame.drop(columns="class").to_numpy(), written[keep][:, kept])


def test_partitions_cover_every_event_once(data_file: Path) -> None:
    source = MiniBooNESource(data_file, chunk_rows=700)
    parts = source.partitions()
    bounds = [(0, 700), (700, 1400), (1400, 2100), (2100, 2800), (2800, 3000)]
    assert [p.description for p in parts] == [f"{data_file} events {a}-{b}" for a, b in bounds]
    assert [p.index for p in parts] == list(range(5))
    assert [p.rows for p in parts] == [len(p.read()) for p in parts]
    pd.testing.assert_frame_equal(read_all(source), read_all(MiniBooNESource(data_file)))


def test_trailing_blank_lines_are_ignored(tmp_path: Path) -> None:
    lines = file_lines(synthetic_values()[:20], 8)
    source = MiniBooNESource(write_lines(tmp_path / "data.txt", [*lines, "", "  "]), False)
    assert [p.rows for p in source.partitions()] == [20]


def replace_line(lines: list[str], number: int, text: str) -> list[str]:
    """``lines`` with 1-based line ``number`` replaced by ``text``."""
    return [text if i == number else line for i, line in enumerate(lines, 1)]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda ls: replace_line(ls, 1, "signal background"), r"line 1: expected 'n_signal"),
        (lambda ls: replace_line(ls, 1, "8"), r"line 1: expected 'n_signal n_background'"),
        (lambda ls: replace_line(ls, 5, ls[4].rsplit(None, 1)[0]), "line 5: .* found 49"),
        (lambda ls: replace_line(ls, 7, ls[6] + " 1.0"), "line 7: expected 50 values, found 51"),
        (lambda ls: replace_line(ls, 9, ""), "line 9: expected 50 values, found 0"),
        (lambda ls: replace_line(ls, 3, ls[2].replace("E", "X", 1)), r"line 3: '\S+X\S+' is not a"),
        (lambda ls: replace_line(ls, 1, "8 13"), r"8 signal \+ 13 background = 21 .* has 20"),
    ],
)
def test_malformed_files(tmp_path: Path, edit: object, expected: str) -> None:
    lines = edit(file_lines(synthetic_values()[:20], 8))
    with pytest.raises(DataError, match=expected) as err:
        MiniBooNESource(write_lines(tmp_path / "data.txt", lines))
    assert "\n" not in str(err.value)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.txt does not exist"):
        MiniBooNESource(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="chunk_rows must be a positive integer"):
        MiniBooNESource(tmp_path / "missing.txt", chunk_rows=0)
