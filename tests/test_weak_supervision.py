"""Weak-supervision splits of LHCO features: injection, CATHODE's splits, store format."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from fedhex_hpc.cli import main
from fedhex_hpc.data.inspect import verify
from fedhex_hpc.data.sources.lhco import (
    EXTENDED_FEATURES,
    FEATURE_FILE_COLUMNS,
    LHCOFeaturesSource,
    anode_features,
)
from fedhex_hpc.data.synthetic.lhco import write_extra_background, write_features
from fedhex_hpc.data.weak_supervision import (
    DATASETS,
    PREPARE_FILE,
    REAL_BACKGROUND,
    REAL_EXTRA,
    REAL_SIGNAL,
    PrepareConfig,
    Prepared,
    prepare,
)
from fedhex_hpc.errors import ConfigError, DataError

from .conftest import run_cli, small_raw

N_FEATURES = 20_000
N_EXTRA = 6_000
COLUMNS = [*EXTENDED_FEATURES, "mjj"]
SR = (3.3, 3.7)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lhco")
    return (
        write_features(folder / "features.h5", N_FEATURES, seed=5),
        write_extra_background(folder / "extra.h5", N_EXTRA, seed=5),
    )


@pytest.fixture(scope="module")
def prepared(inputs, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    out = tmp_path_factory.mktemp("prepared") / "out"
    return prepare(*inputs, out, PrepareConfig(n_signal=100, seed=3))


def events(prepared: Prepared, name: str, split: str) -> dict[str, np.ndarray]:
    return prepared.columns(name, split, [*COLUMNS, "label"])


def rows(columns: dict[str, np.ndarray]) -> set[bytes]:
    """Each event as the bytes of its stored values (the synthetic values never repeat)."""
    table = np.ascontiguousarray(np.column_stack([columns[n] for n in COLUMNS]), np.float32)
    found = {row.tobytes() for row in table}
    assert len(found) == len(table)
    return found


def inside(mjj: np.ndarray, interval: tuple[float, float]) -> np.ndarray:
    return (mjj >= interval[0]) & (mjj < interval[1])


def source_events(path: Path, background_only: bool = False) -> pd.DataFrame:
    source = LHCOFeaturesSource(path, background_only=background_only)
    frame = pd.concat([p.read() for p in source.partitions()])
    frame[COLUMNS] = frame[COLUMNS].astype(np.float32)
    return frame


def error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# ----------------------------------------------------------------------------- splits


def test_every_split_is_a_verified_dataset(prepared: Prepared) -> None:
    summary = prepared.summary()
    for name, splits in DATASETS.items():
        assert "OK" in verify(prepared.dataset(name))
        assert list(summary["datasets"][name]) == sorted(splits)
        for split in splits:
            counts = summary["datasets"][name][split]
            labels = events(prepared, name, split)["label"]
            assert counts == {"background": int(np.sum(labels == 0)), "signal": int(labels.sum())}
            assert len(labels) > 0


def test_splits_are_disjoint_and_cover_what_they_should(inputs, prepared: Prepared) -> None:
    features, extra = inputs
    sets = {
        (name, split): rows(events(prepared, name, split))
        for name, splits in DATASETS.items()
        for split in splits
    }
    keys = list(sets)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if {a[0], b[0]} != {"sb", "strips"}:
                assert not sets[a] & sets[b], (a, b)
    summary = prepared.summary()
    data = source_events(features)
    background = data[data["class"] == 0]
    sb_all = sets["sb", "train"] | sets["sb", "val"]
    sr_all = sets["sr", "train"] | sets["sr", "val"]
    # the data: all background of the file plus the injected signal, split at the SR
    assert rows(background[COLUMNS]) <= sb_all | sr_all
    assert len(sb_all) + len(sr_all) == len(background) + summary["n_injected"]
    for name in ("sb", "sr", "strips"):
        for split in DATASETS[name]:
            mjj = events(prepared, name, split)["mjj"]
            assert np.all(inside(mjj, SR) == (name == "sr"))
    # the strips: exactly the SB events in 3.1-3.3 and 3.7-3.9 TeV
    sb_columns = [events(prepared, "sb", s) for s in ("train", "val")]
    expected = set()
    for columns in sb_columns:
        keep = inside(columns["mjj"], (3.1, 3.3)) | inside(columns["mjj"], (3.7, 3.9))
        expected |= rows({n: v[keep] for n, v in columns.items()})
    assert sets["strips", "train"] | sets["strips", "val"] == expected
    # simulation and test: SR only; the extra file's events all end in test or sim_bkg
    extra_rows = rows(source_events(extra, background_only=True)[COLUMNS])
    test = events(prepared, "test", "test")
    assert np.all(inside(test["mjj"], SR))
    test_background = rows({n: v[test["label"] == 0] for n, v in test.items()})
    assert test_background | sets["sim_bkg", "train"] | sets["sim_bkg", "val"] == extra_rows
    signal_rows = rows(data[data["class"] == 1][COLUMNS])
    for name, split in (("sim_sig", "train"), ("sim_sig", "val")):
        assert events(prepared, name, split)["label"].all()
        assert sets[name, split] <= signal_rows
    assert not events(prepared, "sim_bkg", "train")["label"].any()


def test_sizes_scale_with_the_input(inputs, prepared: Prepared) -> None:
    summary = prepared.summary()
    counts = {
        (name, split): sum(c.values())
        for name, splits in summary["datasets"].items()
        for split, c in splits.items()
    }
    data = source_events(inputs[0])
    n_background, n_signal = int((data["class"] == 0).sum()), int(data["class"].sum())
    scale = summary["scale"]
    assert scale == {
        "data": n_background / REAL_BACKGROUND,
        "signal": n_signal / REAL_SIGNAL,
        "extra": N_EXTRA / REAL_EXTRA,
    }
    assert counts["sb", "train"] == round(500_000 * scale["data"])
    n_sr = summary["background_sr"] + summary["n_injected_sr"]
    assert counts["sr", "train"] == min(round(60_000 * scale["data"]), n_sr // 2)
    assert counts["sr", "val"] == min(round(60_000 * scale["data"]), n_sr - n_sr // 2)
    test = summary["datasets"]["test"]["test"]
    assert test["signal"] == round(20_000 * scale["signal"])
    holdout = round(300_000 * scale["extra"])
    assert test["background"] == round(40_000 * scale["extra"]) + holdout
    sim = counts["sim_bkg", "train"], counts["sim_bkg", "val"]
    assert sim == ((N_EXTRA - test["background"]) // 2, (N_EXTRA - test["background"] + 1) // 2)
    assert abs(counts["sim_sig", "train"] - counts["sim_sig", "val"]) <= 1


def test_a_larger_input_gives_proportionally_larger_splits(inputs, tmp_path: Path) -> None:
    features = write_features(tmp_path / "features.h5", 2 * N_FEATURES, seed=6)
    extra = write_extra_background(tmp_path / "extra.h5", 2 * N_EXTRA, seed=6)
    small = prepare(*inputs, tmp_path / "small", PrepareConfig(n_signal=100)).summary()
    large = prepare(features, extra, tmp_path / "large", PrepareConfig(n_signal=100)).summary()
    for name, split in (("sb", "train"), ("sr", "train"), ("test", "test"), ("sim_bkg", "val")):
        ratio = sum(large["datasets"][name][split].values()) / sum(
            small["datasets"][name][split].values()
        )
        assert 1.9 < ratio < 2.1, (name, split, ratio)


def test_injected_signal_count_and_s_over_b(inputs, prepared: Prepared, tmp_path: Path) -> None:
    summary = prepared.summary()
    injected = sum(
        summary["datasets"][name][split]["signal"]
        for name in ("sb", "sr")
        for split in ("train", "val")
    )
    assert summary["n_injected"] == injected == 100
    assert summary["n_injected_sr"] == sum(
        summary["datasets"]["sr"][split]["signal"] for split in ("train", "val")
    )
    by_ratio = prepare(*inputs, tmp_path / "sb", PrepareConfig(n_signal=None, s_over_b=0.05))
    facts = by_ratio.summary()
    sr = facts["datasets"]["sr"]
    signal = sum(sr[s]["signal"] for s in sr)
    background = sum(sr[s]["background"] for s in sr)
    assert facts["background_sr"] == background  # every SR event is used at this size
    assert facts["s_over_b"] == signal / background
    assert abs(facts["s_over_b"] - 0.05) < 0.2 * 0.05


def test_no_injection_for_closure_tests(inputs, tmp_path: Path) -> None:
    summary = prepare(*inputs, tmp_path / "out", PrepareConfig(n_signal=0)).summary()
    assert summary["n_injected"] == summary["s_over_b"] == 0
    for name in ("sb", "sr", "strips"):
        assert all(c["signal"] == 0 for c in summary["datasets"][name].values()), name
    assert summary["datasets"]["test"]["test"]["signal"] > 0


def test_same_seed_same_splits_other_seed_other_splits(inputs, tmp_path: Path) -> None:
    a = prepare(*inputs, tmp_path / "a", PrepareConfig(n_signal=100, seed=11))
    b = prepare(*inputs, tmp_path / "b", PrepareConfig(n_signal=100, seed=11))
    c = prepare(*inputs, tmp_path / "c", PrepareConfig(n_signal=100, seed=12))
    for name, splits in DATASETS.items():
        for split in splits:
            first, second = events(a, name, split), events(b, name, split)
            for column in first:
                np.testing.assert_array_equal(first[column], second[column])
    for name, split in (("sb", "train"), ("sr", "val"), ("test", "test"), ("sim_sig", "train")):
        assert rows(events(a, name, split)) != rows(events(c, name, split)), (name, split)


def test_rerun_reuses_and_other_config_or_changed_input_is_an_error(inputs, tmp_path: Path) -> None:
    features = tmp_path / "features.h5"
    features.write_bytes(inputs[0].read_bytes())
    out = tmp_path / "out"
    cfg = PrepareConfig(n_signal=100)
    prepare(features, inputs[1], out, cfg)
    stamp = (out / PREPARE_FILE).stat().st_mtime_ns
    assert prepare(features, inputs[1], out, cfg).path == out
    assert (out / PREPARE_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"another config \(n_signal\); use another folder"):
        prepare(features, inputs[1], out, PrepareConfig(n_signal=50))
    write_features(features, N_FEATURES, seed=9)
    with pytest.raises(DataError, match=r"other or changed inputs \(features file\)"):
        prepare(features, inputs[1], out, cfg)
    prepare(features, inputs[1], out, PrepareConfig(n_signal=50), overwrite=True)
    assert Prepared.read(out).summary()["n_injected"] == 50
    assert not list(tmp_path.glob(".out.*"))
    other = tmp_path / "other"
    (other / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="is not a finished prepare folder"):
        prepare(features, inputs[1], other, cfg)


def test_a_failed_prepare_leaves_nothing_that_looks_finished(inputs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError):
        prepare(*inputs, out, PrepareConfig(n_signal=10**6))
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(DataError, match="not a finished prepare folder"):
        Prepared.read(out)


def test_columns_errors_name_what_exists(prepared: Prepared) -> None:
    with pytest.raises(DataError, match=r"no prepared dataset 'srr'.*did you mean 'sr'"):
        prepared.columns("srr", "train", ["mjj"])
    with pytest.raises(DataError, match="dataset 'test' has no split 'train'; splits: test"):
        prepared.columns("test", "train", ["mjj"])
    with pytest.raises(DataError, match="no column tau43_j1; columns: mj1"):
        prepared.columns("sr", "train", ["tau43_j1"])


def test_config_from_mapping() -> None:
    assert PrepareConfig.from_mapping({"s_over_b": 0.01}).n_signal is None
    cfg = PrepareConfig.from_mapping({"signal_region": [3.4, 3.6], "strips": [[3.2, 3.4]]})
    assert cfg.signal_region == (3.4, 3.6) and cfg.strips == ((3.2, 3.4),)
    cases = {
        "unknown key prepare.n_sigal (did you mean 'n_signal'?)": {"n_sigal": 3},
        "give exactly one of n_signal and s_over_b": {"n_signal": 3, "s_over_b": 0.1},
        "prepare.n_signal must be a non-negative integer, got 1.5": {"n_signal": 1.5},
        "prepare.sr_train must be a positive integer, got 0": {"sr_train": 0},
        "prepare.signal_region must be [low, high]": {"signal_region": [3.7, 3.3]},
        "prepare.strips[0] [3.2, 3.4] overlaps the signal region": {"strips": [[3.2, 3.4]]},
        "prepare.sb_val_fraction must be a number in [0.0, 1.0)": {"sb_val_fraction": 1.0},
    }
    for message, raw in cases.items():
        with pytest.raises(ConfigError) as excinfo:
            PrepareConfig.from_mapping(raw)
        assert message in str(excinfo.value), (message, str(excinfo.value))


# ----------------------------------------------------------------------------- files


def test_generated_extra_file_reads_like_the_real_layout(inputs, tmp_path: Path) -> None:
    extra = inputs[1]
    with h5py.File(extra, "r") as fh:
        assert fh["df/block0_values"].shape == (N_EXTRA, len(FEATURE_FILE_COLUMNS))
        assert fh["df"].attrs["pandas_type"] in (b"frame", "frame")
    raw = pd.read_hdf(extra, "df")
    assert list(raw.columns) == FEATURE_FILE_COLUMNS and not raw["label"].any()
    frame = source_events(extra, background_only=True)
    assert list(frame.columns) == [*COLUMNS, "class"]
    assert np.all(inside(frame["mjj"].to_numpy(), (3.3, 3.7 + 1e-6)))
    expected = anode_features({name: raw[name].to_numpy() for name in raw})
    np.testing.assert_allclose(frame["mjj"], expected["mjj"], rtol=1e-6)
    # the public file may come without a label column: prepare reads it the same way
    unlabelled = tmp_path / "unlabelled.h5"
    raw.drop(columns="label").to_hdf(unlabelled, key="df", format="fixed")
    a = prepare(inputs[0], extra, tmp_path / "a", PrepareConfig(n_signal=100))
    b = prepare(inputs[0], unlabelled, tmp_path / "b", PrepareConfig(n_signal=100))
    for split in ("train", "val"):
        np.testing.assert_array_equal(
            events(a, "sim_bkg", split)["mjj"], events(b, "sim_bkg", split)["mjj"]
        )


# ----------------------------------------------------------------------------- CLI


def test_cli_prepares_and_fedhex_train_runs_on_the_sb_dataset(inputs, tmp_path: Path) -> None:
    out = tmp_path / "prep"
    args = ["data", "prepare-lhco", str(inputs[0]), "--extra", str(inputs[1]), "-o", str(out)]
    result = run_cli(*args, "--n-signal", "100", "--seed", "4")
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"prepared {out}: 100 signal events injected")
    assert [line.split()[0] for line in lines[1:]] == [
        f"{name}/{split}" for name, splits in DATASETS.items() for split in splits
    ]
    assert json.loads((out / PREPARE_FILE).read_text())["config"]["seed"] == 4
    raw = small_raw(
        data={
            "source": "dataset",
            "path": str(out / "sb"),
            "features": ["mj1", "delta_mj", "tau21_j1", "tau21_j2"],
        },
        train={"max_epochs": 1, "batch_size": 512},
    )
    for key in ("target", "n_train", "n_val", "n_test"):
        del raw["data"][key]
    config = tmp_path / "sb.yaml"
    config.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    trained = run_cli("train", str(config), "--run-dir", str(run), "--no-evaluate")
    assert "training" in trained.stdout and (run / "model" / "spec.json").is_file()


def test_cli_bad_inputs_are_one_line_errors(
    inputs, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    features, extra = inputs
    raw = pd.read_hdf(features, "df")
    unlabelled = tmp_path / "unlabelled.h5"
    raw.drop(columns="label").to_hdf(unlabelled, key="df", format="fixed")
    mjj = anode_features({name: raw[name].to_numpy() for name in raw})["mjj"].to_numpy()
    gap = tmp_path / "gap.h5"
    raw[~inside(mjj, (3.3, 3.7))].to_hdf(gap, key="df", format="fixed")
    outside = write_extra_background(tmp_path / "outside.h5", 500, mjj_range=(4.0, 4.5))

    def fails(*args: str) -> str:
        capsys.readouterr()
        assert main(["data", "prepare-lhco", *args, "-o", str(tmp_path / "out")]) == 2
        captured = capsys.readouterr()
        assert not captured.out
        (line,) = captured.err.strip().splitlines()
        return line

    expected = {
        "no column 'label'; expected labelled events": [str(unlabelled), "--extra", str(extra)],
        "n_signal 5000 is larger than the 1818 signal events": [
            str(features),
            "--extra",
            str(extra),
            "--n-signal",
            "5000",
        ],
        "n_signal 1700 is larger than the signal available": [
            str(features),
            "--extra",
            str(extra),
            "--n-signal",
            "1700",
        ],
        "signal region [7.5, 8.0] TeV lies outside the mjj range": [
            str(features),
            "--extra",
            str(extra),
            "--n-signal",
            "10",
            "--signal-region",
            "7.5",
            "8",
        ],
        "no background events of": [str(gap), "--extra", str(extra), "--n-signal", "10"],
        "0 signal-region events before its last 245": [
            str(features),
            "--extra",
            str(outside),
            "--n-signal",
            "10",
        ],
    }
    for message, args in expected.items():
        line = fails(*args)
        assert line.startswith(("data error: ", "config error: ")) and message in line, line
    assert not (tmp_path / "out").exists()
    # and in a process of its own, like a job script runs it
    args = [str(unlabelled), "--extra", str(extra), "-o", str(tmp_path / "out")]
    line = error_line(run_cli("data", "prepare-lhco", *args, check=False))
    assert line.startswith(f"data error: {unlabelled}: key 'df': no column 'label'")
