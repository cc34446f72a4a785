"""Mixlearn: the plan's columns and counts, synthetic pools, classifier rows, collect."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from fedhex_hpc.classifiers import ClassifierConfig
from fedhex_hpc.data.cluster import ClusterOptions
from fedhex_hpc.data.convert import convert
from fedhex_hpc.data.dataset import DatasetView
from fedhex_hpc.data.sources.columns import ColumnsSource
from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.studies.mixlearn import PLAN_COLUMNS, collect, plan_study, run_flows, run_row
from fedhex_hpc.studies.mixlearn.events import read_pool, row_events
from fedhex_hpc.studies.mixlearn.folder import StudyFolder
from fedhex_hpc.studies.mixlearn.spec import flow_config

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ClusterOptions(workers=1, threads=1, memory_limit="1GB")
N_EVENTS = 8000
SPEC = {
    "name": "tiny",
    "seed": 5,
    "flows": {
        "flow": {"n_blocks": 1, "hidden_units": [16]},
        "train": {"max_epochs": 2, "batch_size": 256, "log_every": 100, "checkpoint_every": 1},
        "evaluate": {"n_generated": 500, "classifier_auc": False, "plots": False},
    },
    "grid": {"models": [0, 1], "genuine": [300, 900], "synthetic": [0, 600]},
    "validation": 200,
    "classifier": {"hidden_units": [16, 16], "batch_size": 128, "max_epochs": 8, "patience": 3},
}


def labelled_file(path: Path, n: int, signal_fraction: float) -> Path:
    """Two overlapping 3D Gaussian classes in one HDF5 file (label 1 = signal)."""
    rng = np.random.default_rng(0)
    label = (rng.random(n) < signal_fraction).astype(float)
    x = rng.normal(size=(n, 3)) + 0.8 * label[:, None]
    with h5py.File(path, "w") as fh:
        for j, name in enumerate("abc"):
            fh[name] = x[:, j]
        fh["label"] = label
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixlearn-data")
    table = labelled_file(folder / "table.h5", N_EVENTS, 0.3)
    out = folder / "dataset"
    convert(ColumnsSource(table, list("abc"), class_column="label"), out, cluster=LOCAL)
    return out


def write_spec(folder: Path, dataset: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "dataset": str(dataset), **changes}))
    return path


@pytest.fixture(scope="module")
def study(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A planned study whose flows are trained and whose pools are drawn."""
    folder = tmp_path_factory.mktemp("mixlearn-study")
    out = folder / "study"
    plan_study(write_spec(folder, dataset), out)
    run_flows(out)
    return out


def rows_of(rows: np.ndarray) -> set[bytes]:
    """The rows of an array as a set, to compare event sets."""
    return {r.tobytes() for r in np.asarray(rows, np.float32)}


def test_plan_has_the_columns_in_order_and_the_grid(dataset, tmp_path):
    out = tmp_path / "study"
    assert plan_study(write_spec(tmp_path, dataset), out) == 2 * 2 * 2
    table = pd.read_csv(out / "training.plan.csv")
    assert list(table.columns) == PLAN_COLUMNS
    assert (table["done"] == 0).all() and table["accuracy"].isna().all()
    grid = list(zip(table["model"], table["dsize"], table["tsize"], strict=True))
    assert grid == [(m, g, s) for m in (0, 1) for g in (300, 900) for s in (0, 600)]
    assert plan_study(write_spec(tmp_path, dataset), out) == 8  # the same plan again: fine
    with pytest.raises(ConfigError, match="already holds another study"):
        plan_study(write_spec(tmp_path, dataset, validation=100), out)


def test_plan_counts_follow_the_signal_fraction_and_validation_is_pro_rata(dataset, tmp_path):
    out = tmp_path / "study"
    plan_study(write_spec(tmp_path, dataset), out)
    table = pd.read_csv(out / "training.plan.csv")
    counts = json.loads((out / "study.json").read_text())["counts"]
    f = counts["train"]["signal"] / (counts["train"]["signal"] + counts["train"]["background"])
    assert 0.25 < f < 0.35
    for _, r in table.iterrows():
        for part, total in (("t_ge", r.dsize), ("t_sy", r.tsize), ("v_ge", r.size_clf_v_ge)):
            sig, noi = r[f"clf_{part}_sig"], r[f"clf_{part}_noi"]
            assert sig + noi == total == r[f"size_clf_{part}"]
            assert abs(sig - f * total) <= 0.5
        assert r.size_clf_v_ge + r.size_clf_v_sy == 200
        assert abs(r.size_clf_v_ge - 200 * r.dsize / (r.dsize + r.tsize)) <= 0.5
        assert r.clf_v_sy_sig + r.clf_v_sy_noi == r.size_clf_v_sy
        assert abs(r.clf_v_sy_sig - f * r.size_clf_v_sy) <= 0.5
        assert r.clfsize == r.size_clf_t_ge + r.size_clf_t_sy == r.dsize + r.tsize
        assert (r.size_nf_t_sig, r.size_nf_t_noi) == (
            counts["train"]["signal"],
            counts["train"]["background"],
        )
        assert (r.size_nf_v_sig, r.size_nf_v_noi) == (
            counts["val"]["signal"],
            counts["val"]["background"],
        )
        assert (r.test_clf_sig, r.test_clf_no) == (
            counts["test"]["signal"],
            counts["test"]["background"],
        )
    assert (table.loc[table.tsize == 0, "size_clf_v_sy"] == 0).all()
    with pytest.raises(ConfigError, match="no synthetic pool"):
        run_row(out, 0)


def test_row_events_use_fresh_synthetic_validation_events_from_the_pools(study):
    folder = StudyFolder(study)
    spec = folder.spec()
    pools = {c: read_pool(folder.pool_file(c)) for c in ("signal", "background")}
    table = folder.plan()
    index = int(table.index[(table.model == 0) & (table.dsize == 900) & (table.tsize == 600)][0])
    planned = folder.row(index)
    events = row_events(spec, planned, pools)
    for key, part in events.parts.items():
        assert len(part) == planned[f"clf_{key}"]
    for cls, short in (("signal", "sig"), ("background", "noi")):
        pool_train, pool_val = rows_of(pools[cls]["train"]), rows_of(pools[cls]["val"])
        sy_train, sy_val = (
            rows_of(events.parts[f"t_sy_{short}"]),
            rows_of(events.parts[f"v_sy_{short}"]),
        )
        assert sy_val and sy_val <= pool_val and sy_train <= pool_train
        assert not sy_val & sy_train and not pool_val & pool_train
        view = DatasetView(flow_config(spec, cls).data)
        assert rows_of(events.parts[f"t_ge_{short}"]) <= rows_of(view.load("train").x)
        assert rows_of(events.parts[f"v_ge_{short}"]) <= rows_of(view.load("val").x)
    x_val, y_val = events.validation()
    assert len(x_val) == 200 and y_val.sum() == planned["clf_v_ge_sig"] + planned["clf_v_sy_sig"]
    # one model takes nested subsets; another model other events
    smaller = row_events(spec, folder.row(index - 2), pools)  # model 0, genuine 300
    assert rows_of(smaller.parts["t_ge_sig"]) <= rows_of(events.parts["t_ge_sig"])
    other = row_events(spec, folder.row(index + 4), pools)  # model 1, same counts
    assert rows_of(other.parts["t_ge_sig"]) != rows_of(events.parts["t_ge_sig"])


#: Runs row 2 in a fresh process that is SIGKILLed when its classifier starts training.
KILLED_ROW = """
import os, signal
import fedhex_hpc.classifiers.network as classifier
classifier.train_classifier = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
from fedhex_hpc.studies.mixlearn import run_row
run_row({study!r}, 2)
"""


def test_small_study_end_to_end_with_a_killed_row(study):
    results = [run_row(study, row) for row in (0, 1, 3)]
    for result in results:
        assert result["done"] == 1 and 1 <= result["max_epoch"] <= 8
        assert result["best_val_loss"] == pytest.approx(min(result["val_loss"]))
        total = result["tsig"] + result["fnoise"] + result["tnoise"] + result["fsig"]
        assert total == result["test_clf_sig"] + result["test_clf_no"]
        assert result["tsig"] + result["fnoise"] == result["test_clf_sig"]
        assert result["accuracy"] == pytest.approx((result["tsig"] + result["tnoise"]) / total)
        assert 0.55 < result["accuracy"] < 1 and result["loss"] > 0
    assert run_row(study, 0) == results[0]  # done rows are skipped

    killed = subprocess.run([sys.executable, "-c", KILLED_ROW.format(study=str(study))])
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (study / "results").iterdir()) == ["0.json", "1.json", "3.json"]
    text = collect(study)
    assert text.startswith("3 of 8 rows done")
    table = pd.read_csv(study / "training.plan.csv")
    assert list(table.columns) == PLAN_COLUMNS
    assert list(table["done"]) == [1, 1, 0, 1, 0, 0, 0, 0]
    assert table.loc[2, ["accuracy", "loss", "tsig"]].isna().all()
    assert table.loc[0, "accuracy"] == pytest.approx(results[0]["accuracy"])

    rerun = run_row(study, 2)
    assert rerun["done"] == 1
    forced = run_row(study, 0, force=True)
    assert {k: forced[k] for k in ("tsig", "fsig", "max_epoch")} == {
        k: results[0][k] for k in ("tsig", "fsig", "max_epoch")
    }
    text = collect(study)
    assert text.startswith("4 of 8 rows done") and "genuine \\ synthetic" in text
    summary = pd.read_csv(study / "summary.csv")
    assert set(zip(summary.dsize, summary.tsize, strict=True)) == {
        (300, 0),
        (300, 600),
        (900, 0),
        (900, 600),
    }
    assert (study / "plots" / "accuracy.png").stat().st_size > 0
    assert (study / "plots" / "loss.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="row 8 is outside the plan"):
        run_row(study, 8)


def overfitting_data(n_train: int) -> tuple:
    rng = np.random.default_rng(1)
    train = (rng.normal(size=(n_train, 4)), (rng.random(n_train) < 0.5).astype(float))
    val = (rng.normal(size=(300, 4)), (rng.random(300) < 0.5).astype(float))
    return train, val


def val_loss_of(result, val) -> float:
    from fedhex_hpc.classifiers.network import classification_metrics

    return classification_metrics(val[1], result.predict(val[0]))["loss"]


def test_classifier_restores_best_weights_at_max_epochs_and_after_early_stopping():
    from fedhex_hpc.classifiers.network import train_classifier

    train, val = overfitting_data(40)  # random labels: the validation loss soon rises
    cfg = ClassifierConfig(hidden_units=[64, 64], learning_rate=0.01, batch_size=16)
    cfg.max_epochs, cfg.patience = 12, 0
    full = train_classifier(train, val, cfg, seed=3)
    assert full.epochs == 12 and len(full.history["val_loss"]) == 12
    assert full.best_epoch < 12
    assert full.best_val_loss == min(full.history["val_loss"])
    assert val_loss_of(full, val) == pytest.approx(full.best_val_loss, rel=1e-5)

    cfg.max_epochs, cfg.patience = 200, 2
    early = train_classifier(train, val, cfg, seed=3)
    assert early.epochs == early.best_epoch + 2 < 200
    assert val_loss_of(early, val) == pytest.approx(early.best_val_loss, rel=1e-5)


def test_bundled_spec_small_variant_plans_on_a_labelled_dataset(dataset, tmp_path):
    rows = plan_study(ROOT / "studies" / "mixlearn.yaml", tmp_path / "s", True, dataset)
    assert rows == 2 * 2 * 2
    with pytest.raises(ConfigError, match=r"grid.genuine needs .* events per classifier"):
        plan_study(ROOT / "studies" / "mixlearn.yaml", tmp_path / "f", False, dataset)


def test_bundled_miniboone_flows_sweep_expands():
    from fedhex_hpc.studies.sweep import expand, load_spec

    for small, blocks in ((False, 30), (True, 2)):
        tasks = expand(load_spec(ROOT / "studies" / "miniboone.yaml", small=small)[0])
        assert [t.config.data.classes for t in tasks] == [["signal"], ["background"]]
        assert {t.config.flow.n_blocks for t in tasks} == {blocks}
        assert {t.config.data.source for t in tasks} == {"dataset"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bogus": 1}, "unknown key bogus; valid keys: name, dataset, seed"),
        ({"grid": {"genuin": [1]}}, "unknown key grid.genuin .*valid keys: models, genuine"),
        ({"classifier": {"max_epochs": 0}}, "classifier.max_epochs must be a positive integer"),
        ({"flows": {"flow": {"n_block": 2}}}, "flows: unknown key flow.n_block"),
        ({"flows": {"data": {"classes": ["signal"]}}}, "flows.data.classes is set by the study"),
        ({"grid": {"genuine": [0, 10], "synthetic": [0]}}, "both hold 0"),
        ({"grid": {"genuine": [100000]}}, r"grid.genuine needs [\d,]+ genuine signal train events"),
        ({"validation": 5000}, "validation needs .* genuine signal val events"),
        ({"small": {"grid": {"model": [1]}}}, "unknown key small.grid.model"),
    ],
)
def test_bad_specs(dataset, tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        plan_study(write_spec(tmp_path, dataset, **changes), tmp_path / "s", small=True)


def test_a_dataset_without_both_classes_is_refused(tmp_path):
    table = labelled_file(tmp_path / "table.h5", 600, 0.0)
    out = tmp_path / "background-only"
    convert(ColumnsSource(table, list("abc"), class_column="label"), out, cluster=LOCAL)
    with pytest.raises(DataError, match="there are none in train signal, val signal, test signal"):
        plan_study(write_spec(tmp_path, out), tmp_path / "s")
    with pytest.raises(ConfigError, match="not a mixlearn study folder"):
        run_row(tmp_path / "s", 0)
