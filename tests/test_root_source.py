"""RootSource on real ROOT files (scikit-hep-testdata) and on small FEDHEX-layout files."""

from __future__ import annotations

import pickle
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pytest
import uproot

from fedhex_hpc.data.sources.root import RootSource
from fedhex_hpc.errors import ConfigError, DataError

FedhexDir = tuple[Path, list[dict[str, list]]]

DATA = Path(__file__).resolve().parent / "data" / "root"
FEDHEX_FEATURES = {
    "phi_mass": "CBL_RecoPhi_mass",
    "omega_mass": "TwoProng_massPi0[CBL_RecoPhi_twoprongindex]",
}
FEDHEX_CONDITIONS = {"gen_phi": "GenPhi_mass[0]", "gen_omega": "GenOmega_mass[0]"}
FEDHEX_CUT = "(CBL_Region == 1) & (Photon_pt[0] > 220)"


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The real ROOT files kept with the tests (scikit-hep-testdata)."""
    assert DATA.is_dir(), f"real ROOT test files missing from {DATA}"
    return DATA


def read_all(source: RootSource) -> pd.DataFrame:
    """Every partition of ``source`` read through a pickle round trip, concatenated."""
    frames = [pickle.loads(pickle.dumps(p.read))() for p in source.partitions()]
    return pd.concat(frames, ignore_index=True)


def fedhex_events(seed: int, n: int = 40) -> dict[str, list]:
    """Random events in the FEDHEX layout; index -1 only outside region 1."""
    rng = np.random.default_rng(seed)
    region = rng.integers(0, 3, n)
    n_prongs = rng.integers(0, 4, n)
    prongs = [list(rng.uniform(0.5, 2.0, k)) for k in n_prongs]
    index = [int(rng.integers(0, k)) if k else -1 for k in n_prongs]
    region = np.where(np.array(index) < 0, 0, region)
    return {
        "CBL_Region": region.astype(np.int32),
        "CBL_RecoPhi_mass": rng.uniform(200.0, 3000.0, n),
        "TwoProng_massPi0": prongs,
        "CBL_RecoPhi_twoprongindex": np.array(index, dtype=np.int32),
        "GenPhi_mass": [[m] for m in rng.choice([500.0, 1000.0], n)],
        "GenOmega_mass": [[m] for m in rng.choice([0.55, 1.2], n)],
        "Photon_pt": [list(rng.uniform(150.0, 400.0, k)) for k in rng.integers(0, 3, n)],
    }


def write_fedhex(path: Path, events: dict[str, list]) -> Path:
    """Write ``events`` as TTree ``Events`` (jagged lists become jagged branches).

    ``file[name] = arrays`` would write an RNTuple with uproot >= 5.7, hence ``mktree``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    branches = {k: ak.Array(v) if isinstance(v, list) else v for k, v in events.items()}
    types = {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
    with uproot.recreate(path) as file:
        file.mktree("Events", types).extend(branches)
    return path


def fedhex_expected(events: dict[str, list]) -> list[tuple[float, ...]]:
    """The FEDHEX rows computed by hand, event by event."""
    rows = []
    for i, region in enumerate(events["CBL_Region"]):
        photons = events["Photon_pt"][i]
        if region == 1 and photons and photons[0] > 220:
            omega = events["TwoProng_massPi0"][i][events["CBL_RecoPhi_twoprongindex"][i]]
            gen = (events["GenPhi_mass"][i][0], events["GenOmega_mass"][i][0])
            rows.append((events["CBL_RecoPhi_mass"][i], omega, *gen))
    return rows


@pytest.fixture(scope="module")
def fedhex_dir(tmp_path_factory: pytest.TempPathFactory) -> FedhexDir:
    """Two files in folder ``a`` and one in folder ``b/c``, with their events."""
    root = tmp_path_factory.mktemp("fedhex")
    names = ["a/first.root", "a/second.root", "b/c/third.root"]
    events = [fedhex_events(seed) for seed in range(len(names))]
    for name, file_events in zip(names, events, strict=True):
        write_fedhex(root / name, file_events)
    return root, events


def fedhex_source(paths: list[Path], **changes: object) -> RootSource:
    """A RootSource with the FEDHEX expressions, optionally changed."""
    options = {
        "tree": "Events",
        "features": FEDHEX_FEATURES,
        "conditions": FEDHEX_CONDITIONS,
        "cut": FEDHEX_CUT,
        **changes,
    }
    return RootSource(paths, **options)


def test_flat_branches_with_cut_match_uproot(data_dir: Path) -> None:
    path = data_dir / "uproot-Zmumu.root"
    features = {"M": "M", "pt": "sqrt(px1**2 + py1**2)"}
    source = RootSource([path], "events", features, cut="M > 80", step_size=1000)
    frame = read_all(source)
    tree = uproot.open(path)["events"]
    direct = tree.arrays(list(features.values()), cut="M > 80", library="np")
    assert [p.description for p in source.partitions()] == [
        f"{path}:events entries {a}-{b}" for a, b in [(0, 1000), (1000, 2000), (2000, 2304)]
    ]
    assert [c.role for c in source.columns] == ["feature", "feature"]
    assert list(frame.columns) == ["M", "pt"] and (frame.dtypes == np.float64).all()
    for name, expression in features.items():
        np.testing.assert_allclose(frame[name], direct[expression], rtol=1e-12)
    assert source.source_files() == [path]


def test_partitions_without_cut_know_their_rows(data_dir: Path) -> None:
    source = RootSource([data_dir / "uproot-Zmumu.root"], "events", {"E": "E1"}, weight="Q1")
    parts = source.partitions()
    assert [p.rows for p in parts] == [2304] and [p.index for p in parts] == [0]
    assert [(c.name, c.role) for c in source.columns] == [("E", "feature"), ("weight", "weight")]
    assert len(parts[0].read()) == 2304


def test_constant_index_is_per_event(data_dir: Path) -> None:
    path = data_dir / "uproot-HZZ.root"
    source = RootSource([path], "events", {"mu_px": "Muon_Px[0]"}, cut="NMuon >= 1")
    muons = uproot.open(path)["events"]["Muon_Px"].array()
    expected = ak.to_numpy(muons[ak.num(muons) >= 1][:, 0])
    np.testing.assert_array_equal(read_all(source)["mu_px"], expected)


def test_index_from_branch(data_dir: Path) -> None:
    path = data_dir / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    cut = "(nMuon >= 1) & (Muon_jetIdx[0] >= 0)"
    source = RootSource([path], "Events", {"jet_pt": "Jet_pt[Muon_jetIdx[0]]"}, cut=cut)
    events = uproot.open(path)["Events"].arrays(["Jet_pt", "Muon_jetIdx"]).to_list()
    expected = [e["Jet_pt"][e["Muon_jetIdx"][0]] for e in events if e["Muon_jetIdx"][:1] >= [0]]
    assert len(expected) > 10
    np.testing.assert_array_equal(read_all(source)["jet_pt"], np.float32(expected))


def test_fedhex_files_of_one_folder_are_combined(fedhex_dir: FedhexDir) -> None:
    root, events = fedhex_dir
    source = fedhex_source([root / "a", root / "b"], step_size=15)
    frame = read_all(source)
    expected = [row for file_events in events for row in fedhex_expected(file_events)]
    assert [f.relative_to(root).as_posix() for f in source.source_files()] == [
        "a/first.root",
        "a/second.root",
        "b/c/third.root",
    ]
    assert len(source.partitions()) == 9
    assert [(c.name, c.role) for c in source.columns] == [
        ("phi_mass", "feature"),
        ("omega_mass", "feature"),
        ("gen_phi", "condition"),
        ("gen_omega", "condition"),
    ]
    assert len(expected) > 3 * 3
    np.testing.assert_allclose(frame.to_numpy(), np.array(expected), rtol=1e-6)


def test_fedhex_invalid_index_needs_a_cut(fedhex_dir: FedhexDir) -> None:
    root, _ = fedhex_dir
    source = fedhex_source([root / "a" / "first.root"], cut="Photon_pt[0] > 220")
    with pytest.raises(DataError, match=r"omega_mass .* index out of range in \d+ events") as err:
        read_all(source)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"tree": "Event"},
            r"no tree 'Event' \(did you mean 'Events'\?\); keys in the file: Events",
        ),
        (
            {"features": {"x": "CBL_Regoin"}},
            r"unknown branch 'CBL_Regoin' \(did you mean 'CBL_Region'",
        ),
        ({"features": {"x": "Photon_pt"}}, r"x 'Photon_pt' is variable-length .* Photon_pt\[0\]"),
        ({"features": {"x": "CBL_Region[0]"}}, r"indexes values that have one number per event"),
        (
            {"features": {"x": "GenPhi_mass[0.5]"}},
            r"index of 'GenPhi_mass\[0.5\]' is not an integer",
        ),
        ({"cut": "Photon_pt[:, 0] > 220"}, r"cut 'Photon_pt\[:, 0\] > 220': cannot slice"),
        ({"cut": "CBL_Region =="}, r"cut: expression 'CBL_Region ==' is not valid syntax"),
    ],
)
def test_fedhex_bad_expressions(fedhex_dir: FedhexDir, changes: dict, expected: str) -> None:
    root, _ = fedhex_dir
    with pytest.raises(DataError, match=expected) as err:
        read_all(fedhex_source([root / "a" / "first.root"], **changes))
    assert "\n" not in str(err.value)


def test_bad_paths(tmp_path: Path) -> None:
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"not a ROOT file " * 100)
    (tmp_path / "empty").mkdir()
    with uproot.recreate(tmp_path / "rntuple.root") as file:
        file["Events"] = {"CBL_Region": np.ones(3, dtype=np.int32)}
    cases = {
        tmp_path / "missing.root": r"missing.root does not exist",
        junk: r"junk.root is not a readable ROOT file \(not a ROOT file",
        tmp_path / "empty": r"empty contains no \*.root files",
        tmp_path / "rntuple.root": r"'Events' is a ROOT::RNTuple, not a TTree",
    }
    for path, expected in cases.items():
        with pytest.raises(DataError, match=expected) as err:
            fedhex_source([path])
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"step_size": 0}, "step_size must be a positive number"),
        ({"step_size": "lots"}, "step_size 'lots'"),
        ({"features": {}}, "at least one feature"),
        ({"conditions": {"phi_mass": "GenPhi_mass[0]"}}, "repeated: phi_mass"),
    ],
)
def test_bad_options(fedhex_dir: FedhexDir, changes: dict, expected: str) -> None:
    root, _ = fedhex_dir
    with pytest.raises(ConfigError, match=expected):
        fedhex_source([root / "a"], **changes)
