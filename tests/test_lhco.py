"""LHCO R&D files: generated layouts match pandas, sources read them exactly once."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from fedhex_hpc.data.sources.lhco import (
    FEATURE_FILE_COLUMNS,
    PARTICLE_COLUMNS,
    LHCOFeaturesSource,
    LHCORawSource,
    LHCOTableSource,
    anode_features,
    table_file_name,
)
from fedhex_hpc.data.synthetic.lhco import generate, write_features, write_raw, write_tables
from fedhex_hpc.errors import ConfigError, DataError

N_RAW = 1500
N_FEATURES = 4000
N_PER_TABLE = 150
FIXED_KEYS = {"df", "df/axis0", "df/axis1", "df/block0_items", "df/block0_values"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small file of each layout (shared: generating them is the slow part)."""
    folder = tmp_path_factory.mktemp("lhco")
    return {
        "raw": write_raw(folder / "raw.h5", N_RAW, seed=1),
        "features": write_features(folder / "features.h5", N_FEATURES, seed=2),
        "features_table": write_features(
            folder / "features_table.h5", N_FEATURES, seed=2, format="table"
        ),
        "tables": folder / "tables",
        **{f"table_{i}": p for i, p in enumerate(write_tables(folder / "tables", N_PER_TABLE))},
    }


def hdf5_names(path: Path) -> set[str]:
    names: list[str] = []
    with h5py.File(path, "r") as fh:
        fh.visit(names.append)
    return set(names)


def read_all(source) -> pd.DataFrame:
    """Concatenate every partition, after a pickle round trip of its reader."""
    frames = []
    for part in source.partitions():
        frame = pickle.loads(pickle.dumps(part.read))()
        assert list(frame.columns) == [c.name for c in source.columns]
        assert len(frame) == part.rows
        frames.append(frame)
    return pd.concat(frames)


def error_text(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# ----------------------------------------------------------------------------- layouts


def test_raw_layout_is_pandas_fixed(files: dict[str, Path], tmp_path: Path) -> None:
    path = files["raw"]
    assert hdf5_names(path) == FIXED_KEYS
    with h5py.File(path, "r") as fh:
        values = fh["df/block0_values"]
        assert values.shape == (N_RAW, 2101)
        assert values.dtype == np.float64
        assert values.chunks is None
        np.testing.assert_array_equal(fh["df/axis0"][()], np.arange(2101))
        np.testing.assert_array_equal(fh["df/axis1"][()], np.arange(N_RAW))
        block = values[()]
    frame = pd.read_hdf(path, "df")
    assert list(frame.columns) == list(range(2101))
    np.testing.assert_array_equal(frame.to_numpy(), block)
    reference = tmp_path / "reference.h5"
    frame.to_hdf(reference, key="df", format="fixed")
    pd.testing.assert_frame_equal(pd.read_hdf(reference, "df"), frame)
    with h5py.File(path, "r") as ours, h5py.File(reference, "r") as theirs:
        for name in FIXED_KEYS:
            assert dict(ours[name].attrs) == dict(theirs[name].attrs), name


def test_raw_events_are_zero_padded_and_labelled(files: dict[str, Path]) -> None:
    block = pd.read_hdf(files["raw"], "df").to_numpy()
    particles = block[:, :-1].reshape(N_RAW, 700, 3)
    pt = particles[:, :, 0]
    counts = (pt > 0).sum(axis=1)
    assert 50 < counts.mean() < 250
    assert np.all(np.diff(pt, axis=1) <= 0)
    empty = np.arange(700) >= counts[:, None]
    assert np.all(particles[empty] == 0.0)
    assert set(np.unique(block[:, -1])) == {0.0, 1.0}
    assert block[:, -1].sum() == round(N_RAW * 100_000 / 1_100_000)


def test_features_layout_is_one_float_block(files: dict[str, Path]) -> None:
    path = files["features"]
    assert hdf5_names(path) == FIXED_KEYS
    with h5py.File(path, "r") as fh:
        assert fh["df/block0_values"].shape == (N_FEATURES, 15)
        assert fh["df/block0_values"].dtype == np.float64
        assert [x.decode() for x in fh["df/block0_items"][()]] == FEATURE_FILE_COLUMNS
    fixed = pd.read_hdf(path, "df")
    assert list(fixed.columns) == FEATURE_FILE_COLUMNS
    pd.testing.assert_frame_equal(pd.read_hdf(files["features_table"], "df"), fixed)


def test_features_physics(files: dict[str, Path]) -> None:
    frame = LHCOFeaturesSource(files["features"]).partitions()[0].read()
    signal, background = frame[frame["class"] == 1], frame[frame["class"] == 0]
    assert abs(signal["mjj"].median() - 3.5) < 0.05
    assert background["mjj"].min() >= 2.5 - 1e-9
    assert background["mjj"].max() <= 7.0 + 1e-9
    assert background["mjj"].median() < 3.3
    assert abs(signal["mj1"].median() - 0.1) < 0.01
    assert abs(signal["delta_mj"].median() - 0.4) < 0.03
    assert signal["tau21_j1"].mean() < background["tau21_j1"].mean() - 0.15
    # QCD jet masses are continuous inside 5-800 GeV: no value repeats (a clip would pile
    # ~1% of the jets onto the bound, an atom no flow models and a classifier finds)
    for jet_mass in (background["mj1"], background["mj1"] + background["delta_mj"]):
        assert jet_mass.min() >= 0.005 - 1e-6 and jet_mass.max() <= 0.8 + 1e-6
        assert jet_mass.round(6).value_counts().max() <= 3


def test_table_files_are_pandas_tables(files: dict[str, Path]) -> None:
    folder = files["tables"]
    names = {p.name for p in folder.iterdir()}
    assert names == {
        table_file_name(c, s) for c in ("background", "signal") for s in ("train", "val", "test")
    }
    frame = pd.read_hdf(folder / table_file_name("signal", "val"), "df")
    assert frame.shape == (N_PER_TABLE, 2100)
    assert list(frame.columns) == PARTICLE_COLUMNS
    assert set(frame.dtypes) == {np.dtype(np.float32)}


def test_generate_writes_each_kind(tmp_path: Path) -> None:
    (raw,) = generate("raw", tmp_path, 10, seed=0)
    (features,) = generate("features", tmp_path, 10, seed=0)
    (extra,) = generate("extra", tmp_path, 10, seed=0)
    assert raw.name == "events_anomalydetection.h5"
    assert features.name == "events_anomalydetection_v2.features.h5"
    assert extra.name == "events_anomalydetection_qcd_extra_inneronly_features.h5"
    assert len(generate("tables", tmp_path / "t", 5, seed=0)) == 6
    assert not list(tmp_path.glob(".*partial"))
    with pytest.raises(ConfigError, match="kind"):
        generate("jets", tmp_path, 10, seed=0)
    with pytest.raises(ConfigError, match="n_events"):
        generate("raw", tmp_path, 0, seed=0)


# ----------------------------------------------------------------------------- sources


def test_raw_source_partitions_cover_every_row(files: dict[str, Path]) -> None:
    source = LHCORawSource(files["raw"], chunk_rows=400)
    assert [p.rows for p in source.partitions()] == [400, 400, 400, 300]
    assert source.source_files() == [files["raw"]]
    frame = read_all(source)
    expected = pd.read_hdf(files["raw"], "df").to_numpy()
    np.testing.assert_array_equal(frame.index, np.arange(N_RAW))
    # read as float32, what the store keeps, rounded exactly like numpy's cast
    assert frame[PARTICLE_COLUMNS].to_numpy().dtype == np.float32
    np.testing.assert_array_equal(
        frame[PARTICLE_COLUMNS].to_numpy(), expected[:, :-1].astype(np.float32)
    )
    np.testing.assert_array_equal(frame["class"], expected[:, -1].astype(int))
    assert [c.unit for c in source.columns[:3]] == ["GeV", "", "rad"]


def test_raw_source_reads_compressed_fixed_files_like_contiguous_ones(
    files: dict[str, Path], tmp_path: Path
) -> None:
    # pandas stores an uncompressed fixed frame contiguously (read through a memory
    # mapping) and a compressed one in chunks (read through HDF5): same rows either way
    compressed = tmp_path / "compressed.h5"
    pd.read_hdf(files["raw"], "df").to_hdf(compressed, key="df", format="fixed", complevel=1)
    with h5py.File(compressed) as fh:
        assert fh["df/block0_values"].chunks is not None
    with h5py.File(files["raw"]) as fh:
        assert fh["df/block0_values"].chunks is None
    mapped = read_all(LHCORawSource(files["raw"], chunk_rows=700))
    pd.testing.assert_frame_equal(read_all(LHCORawSource(compressed, chunk_rows=700)), mapped)


def test_table_source_classes_from_file_names(files: dict[str, Path]) -> None:
    paths = sorted(files["tables"].iterdir())
    source = LHCOTableSource(paths, chunk_rows=100)
    assert source.source_files() == paths
    assert len(source.partitions()) == 2 * len(paths)
    assert [p.index for p in source.partitions()] == list(range(2 * len(paths)))
    frame = read_all(source)
    assert len(frame) == N_PER_TABLE * len(paths)
    signal_rows = sum(N_PER_TABLE for p in paths if "_signal_" in p.name)
    assert frame["class"].sum() == signal_rows
    first = pd.read_hdf(paths[0], "df")
    np.testing.assert_array_equal(frame[PARTICLE_COLUMNS].to_numpy()[:N_PER_TABLE], first)


@pytest.mark.parametrize("kind", ["features", "features_table"])
def test_features_source_partitions_cover_every_row(files: dict[str, Path], kind: str) -> None:
    source = LHCOFeaturesSource(files[kind], chunk_rows=1500)
    assert source.format == ("fixed" if kind == "features" else "table")
    assert [p.rows for p in source.partitions()] == [1500, 1500, 1000]
    frame = read_all(source)
    raw = pd.read_hdf(files[kind], "df")
    expected = anode_features({name: raw[name].to_numpy() for name in raw})
    np.testing.assert_array_equal(frame.index, np.arange(N_FEATURES))
    pd.testing.assert_frame_equal(frame.drop(columns="class"), expected.set_axis(frame.index))
    np.testing.assert_array_equal(frame["class"], raw["label"].astype(int))
    assert {c.name: c.role for c in source.columns}["mjj"] == "condition"


def hand_jets() -> pd.DataFrame:
    """Back-to-back jets (mjj = E1 + E2), swapped masses, tau1 = 0, collinear massless."""
    rows = [
        # px, py, pz, m, tau1, tau2, tau3 of jet 1, then jet 2, then the label
        [1000, 0, 0, 100, 0.5, 0.1, 0.05, -1000, 0, 0, 500, 0.4, 0.3, 0.2, 1],
        [0, 800, 600, 300, 0.2, 0.1, 0.0, 0, -800, -600, 50, 0.8, 0.6, 0.3, 0],
        [0, 0, 1000, 200, 0.0, 0.0, 0.0, 0, 0, -1000, 200, 0.5, 0.25, 0.1, 0],
        [500, 0, 0, 0, 0.3, 0.3, 0.3, 300, 0, 0, 0, 0.2, 0.1, 0.1, 1],
    ]
    frame = pd.DataFrame(rows, columns=FEATURE_FILE_COLUMNS, dtype=np.float64)
    return frame.astype({"label": np.int64})


@pytest.mark.parametrize("layout", ["fixed", "table"])
def test_anode_features_by_hand(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "hand.h5"
    hand_jets().to_hdf(path, key="df", format=layout)
    frame = LHCOFeaturesSource(path).partitions()[0].read()
    e_100, e_500 = np.hypot(1000, 100), np.hypot(1000, 500)
    e_300, e_50, e_200 = np.hypot(1000, 300), np.hypot(1000, 50), np.hypot(1000, 200)
    expected = pd.DataFrame(
        {
            "mj1": [0.1, 0.05, 0.2, 0.0],
            "delta_mj": [0.4, 0.25, 0.0, 0.0],
            "tau21_j1": [0.2, 0.75, 0.0, 1.0],
            "tau21_j2": [0.75, 0.5, 0.5, 0.5],
            "tau32_j1": [0.5, 0.5, 0.0, 1.0],
            "tau32_j2": [0.2 / 0.3, 0.0, 0.4, 1.0],
            "mjj": [(e_100 + e_500) / 1000, (e_300 + e_50) / 1000, 2 * e_200 / 1000, 0.0],
            "class": [1, 0, 0, 1],
        }
    )
    pd.testing.assert_frame_equal(frame, expected)


# ----------------------------------------------------------------------------- bad input


def test_not_hdf5_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "events_anomalydetection.h5"
    path.write_text("pT,eta,phi\n1,2,3\n")
    for source in (LHCORawSource, LHCOFeaturesSource):
        with pytest.raises(DataError) as excinfo:
            source(path)
        assert str(path) in error_text(excinfo)
        assert "not a readable HDF5 file" in error_text(excinfo)


def test_truncated_file_is_a_data_error(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "truncated.h5"
    path.write_bytes(files["raw"].read_bytes()[: files["raw"].stat().st_size // 2])
    with pytest.raises(DataError) as excinfo:
        LHCORawSource(path)
    assert str(path) in error_text(excinfo)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        LHCORawSource(tmp_path / "absent.h5")


def test_missing_key_lists_keys_found(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as fh:
        fh["events/particles"] = np.zeros((3, 2101))
    with pytest.raises(DataError) as excinfo:
        LHCORawSource(path)
    text = error_text(excinfo)
    assert "'df/block0_values'" in text
    assert "events, events/particles" in text


def test_wrong_column_count(tmp_path: Path) -> None:
    path = tmp_path / "narrow.h5"
    pd.DataFrame(np.zeros((4, 10))).to_hdf(path, key="df", format="fixed")
    with pytest.raises(DataError) as excinfo:
        LHCORawSource(path)
    assert "expected 2101 columns, found 10" in error_text(excinfo)


def test_bad_label_is_a_data_error_on_read(tmp_path: Path) -> None:
    path = tmp_path / "labels.h5"
    values = np.zeros((3, 2101))
    values[1, -1] = 2.0
    pd.DataFrame(values).to_hdf(path, key="df", format="fixed")
    with pytest.raises(DataError) as excinfo:
        LHCORawSource(path).partitions()[0].read()
    assert "row 1: expected label 0 or 1, found" in error_text(excinfo)


def test_features_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "features.h5"
    hand_jets().drop(columns="tau3j2").to_hdf(path, key="df")
    with pytest.raises(DataError) as excinfo:
        LHCOFeaturesSource(path)
    assert "missing columns tau3j2 of the features file" in error_text(excinfo)


@pytest.mark.parametrize("layout", ["fixed", "table"])
def test_background_only_file_may_lack_labels(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "extra.h5"
    jets = hand_jets()
    jets.drop(columns="label").to_hdf(path, key="df", format=layout)
    with pytest.raises(DataError) as excinfo:
        LHCOFeaturesSource(path)
    assert "no column 'label'; expected labelled events" in error_text(excinfo)
    frame = LHCOFeaturesSource(path, background_only=True).partitions()[0].read()
    expected = anode_features({name: jets[name].to_numpy() for name in jets})
    pd.testing.assert_frame_equal(frame.drop(columns="class"), expected)
    assert frame["class"].tolist() == [0, 0, 0, 0]


def test_background_only_file_rejects_signal_labels(tmp_path: Path) -> None:
    path = tmp_path / "extra.h5"
    hand_jets().to_hdf(path, key="df")
    with pytest.raises(DataError) as excinfo:
        LHCOFeaturesSource(path, background_only=True).partitions()[0].read()
    assert "'label' row 0: expected 0 (a background-only file), found 1" in error_text(excinfo)


def test_table_source_bad_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    unnamed = tmp_path / "events.h5"
    unnamed.write_bytes((files["tables"] / table_file_name("signal", "test")).read_bytes())
    with pytest.raises(DataError, match="cannot tell the class"):
        LHCOTableSource([unnamed])
    fixed = tmp_path / table_file_name("signal", "test")
    pd.DataFrame(np.zeros((2, 3))).to_hdf(fixed, key="df", format="fixed")
    with pytest.raises(DataError, match="expected pandas table format"):
        LHCOTableSource([fixed])
    narrow = tmp_path / table_file_name("background", "test")
    pd.DataFrame(np.zeros((2, 3)), columns=["a", "b", "c"]).to_hdf(narrow, key="df", format="table")
    with pytest.raises(DataError, match="expected 2100 columns"):
        LHCOTableSource([narrow])
    with pytest.raises(DataError, match="no LHCO table files"):
        LHCOTableSource([])
