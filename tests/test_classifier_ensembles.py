"""Tests for the classifier ensembles (fedhex_hpc.classifiers.ensemble and its kinds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from fedhex_hpc.classifiers import (
    CLASSIFIER_KINDS,
    NeuralEnsembleConfig,
    ScoreModel,
    TreeEnsembleConfig,
    classifier_inputs,
    train_classifier_ensemble,
)
from fedhex_hpc.classifiers.ensemble import balanced_weights
from fedhex_hpc.classifiers.tree_ensemble import tree_splits
from fedhex_hpc.data.sources.lhco import FEATURE_SETS, feature_names
from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.seeding import derive_seed

TREES = TreeEnsembleConfig(n_models=3, max_iter=50)
NEURAL = NeuralEnsembleConfig(
    hidden_units=[16, 16], learning_rate=0.01, epochs=6, n_best=3, batch_size=256
)


def shifted(n: int, d: float, seed: int, n_noise: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two features; class 1 is shifted by ``d`` in the first; ``n_noise`` extra columns."""
    rs = np.random.default_rng(seed)
    y = rs.integers(0, 2, n)
    x = rs.standard_normal((n, 2 + n_noise))
    x[:, 0] += d * y
    return x, y


def train(kind: str, d: float, n: int = 2000, n_noise: int = 0, config=None, weights=None):
    x, y = shifted(n, d, 1, n_noise)
    xv, yv = shifted(n, d, 2, n_noise)
    config = config or (TREES if kind == "trees" else NEURAL)
    model = train_classifier_ensemble(kind, x, y, weights, xv, yv, None, config, seed=5)
    xt, yt = shifted(4000, d, 3, n_noise)
    return model, float(roc_auc_score(yt, model.score(xt)))


def null_auc_width(n: int) -> float:
    """5 standard deviations of the AUC of scores independent of balanced labels."""
    return 5 * np.sqrt((n + 1) / (12 * (n / 2) ** 2))


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_ensembles_learn_a_separable_problem_and_not_an_unlearnable_one(kind: str) -> None:
    exact = 0.921  # Phi(2 / sqrt(2)): the best AUC of a shift by 2
    assert train(kind, 2.0)[1] > exact - 0.03
    assert abs(train(kind, 0.0)[1] - 0.5) < null_auc_width(4000)


def test_trees_are_robust_to_ten_noise_features() -> None:
    clean = train("trees", 1.5)[1]
    noisy = train("trees", 1.5, n_noise=10)[1]
    assert noisy >= 0.97 * clean


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_sample_weights_change_the_fit(kind: str) -> None:
    x, y = shifted(2000, 2.0, 1)
    # background events far on the signal side weigh 30 times more: the model must
    # then call that region background
    weights = np.where((y == 0) & (x[:, 0] > 1.5), 30.0, 1.0)
    plain, _ = train(kind, 2.0)
    weighted, _ = train(kind, 2.0, weights=weights)
    probe = np.column_stack([np.full(200, 2.5), np.linspace(-1, 1, 200)])
    assert weighted.score(probe).mean() < plain.score(probe).mean() - 0.1


def test_balanced_weights_equalise_the_class_totals() -> None:
    y = np.array([1, 0, 0, 0, 0])
    w = np.array([2.0, 1.0, 1.0, 1.0, 3.0])
    out = balanced_weights(y, w)
    assert out[y == 1].sum() == pytest.approx(out[y == 0].sum()) == pytest.approx(w.sum() / 2)
    assert balanced_weights(y, np.ones(5)) == pytest.approx([2.5, 0.625, 0.625, 0.625, 0.625])


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_save_load_round_trip_gives_identical_scores(kind: str, tmp_path) -> None:
    model, _ = train(kind, 1.0, n=1000)
    model.save(tmp_path / "clf")
    again = ScoreModel.load(tmp_path / "clf")
    x, _ = shifted(500, 1.0, 9)
    assert type(again) is type(model) and again.summary == json.loads(json.dumps(model.summary))
    assert np.array_equal(again.score(x), model.score(x))
    assert not list(tmp_path.glob(".*"))  # nothing temporary left


def test_neural_ensemble_keeps_the_lowest_validation_loss_epochs() -> None:
    model, _ = train("neural", 1.0, n=1000)
    val_loss = model.summary["history"]["val_loss"]
    assert len(val_loss) == 6 and len(model.members) == 3
    assert model.summary["best_val_losses"] == pytest.approx(sorted(val_loss)[:3])
    assert [val_loss[e - 1] for e in model.summary["best_epochs"]] == pytest.approx(
        sorted(val_loss)[:3]
    )


def test_tree_splits_are_disjoint_halves_and_differ_per_model() -> None:
    splits = tree_splits(1001, 3, 0.5, seed=4)
    for fit, stop in splits:
        assert len(stop) == 500 and np.intersect1d(fit, stop).size == 0
        assert np.array_equal(np.union1d(fit, stop), np.arange(1001))
    assert not np.array_equal(splits[0][1], splits[1][1])


@pytest.mark.parametrize("pooled", [True, False])
def test_each_tree_fits_only_its_own_events(pooled: bool) -> None:
    """Refitting model m on its fit indices, stopped on its stopping indices, reproduces it."""
    x, y = shifted(2000, 1.0, 1)
    xv, yv = shifted(1000, 1.0, 2)
    cfg = TreeEnsembleConfig(n_models=2, max_iter=30, pool_validation=pooled)
    model = train_classifier_ensemble("trees", x, y, None, xv, yv, None, cfg, seed=5)
    x_all = np.concatenate([x, xv]) if pooled else x
    y_all = np.concatenate([y, yv]) if pooled else y
    w_all = balanced_weights(y_all, np.ones(len(y_all)))
    fit, stop = tree_splits(len(x_all), 2, 0.5, seed=5)[1]
    if not pooled:
        assert fit.max() < len(x) and stop.max() < len(x)  # validation events unused
    refit = HistGradientBoostingClassifier(
        max_iter=30, early_stopping=True, random_state=derive_seed(5, "tree_init", 1) % 2**32
    )
    with threadpool_limits(limits=1, user_api="openmp"):
        refit.fit(
            x_all[fit],
            y_all[fit],
            w_all[fit],
            X_val=x_all[stop],
            y_val=y_all[stop],
            sample_weight_val=w_all[stop],
        )
    assert refit.n_iter_ == model.models[1].n_iter_
    assert np.array_equal(refit.predict_proba(xv), model.models[1].predict_proba(xv))


def test_training_is_reproducible_from_the_seed() -> None:
    first, _ = train("trees", 1.0, n=1000)
    second, _ = train("trees", 1.0, n=1000)
    x, _ = shifted(300, 1.0, 9)
    assert np.array_equal(first.score(x), second.score(x))


def test_classifier_inputs_feature_sets_and_noise() -> None:
    names = feature_names("extended")
    baseline = feature_names("baseline")
    assert list(FEATURE_SETS) == ["baseline", "extended"] and names[:4] == baseline
    columns = {name: np.arange(5.0) + i for i, name in enumerate(names)}
    x = classifier_inputs(columns, baseline, 3, seed=1)
    assert x.shape == (5, 7) and np.array_equal(x[:, 1], columns["delta_mj"])
    assert np.array_equal(x, classifier_inputs(columns, baseline, 3, seed=1))
    other = classifier_inputs(columns, baseline, 3, seed=1, part=1)
    assert not np.array_equal(x[:, 4:], other[:, 4:])
    assert classifier_inputs(columns, names, 0, seed=1).shape == (5, 6)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_names_and_inputs_are_one_line_errors(tmp_path) -> None:
    x, y = shifted(200, 1.0, 1)
    with pytest.raises(ConfigError) as err:
        train_classifier_ensemble("tree", x, y, None, x, y, None, None, seed=1)
    assert "'trees'" in one_line(err) and "kinds: neural, trees" in one_line(err)
    with pytest.raises(ConfigError, match="needs a TreeEnsembleConfig"):
        train_classifier_ensemble("trees", x, y, None, x, y, None, NEURAL, seed=1)
    with pytest.raises(ConfigError) as err:
        feature_names("extnded")
    assert "'extended'" in one_line(err)
    with pytest.raises(DataError, match="need column"):
        classifier_inputs({"mj1": np.ones(3)}, feature_names("baseline"), 0, seed=1)
    with pytest.raises(DataError, match="val: class 1"):
        train_classifier_ensemble("trees", x, y, None, x, np.zeros(200), None, TREES, seed=1)
    with pytest.raises(ConfigError, match="n_best"):
        cfg = NeuralEnsembleConfig(epochs=2, n_best=3)
        train_classifier_ensemble("neural", x, y, None, x, y, None, cfg, seed=1)
    with pytest.raises(DataError, match="not a saved classifier"):
        ScoreModel.load(tmp_path)
    model, _ = train("trees", 1.0, n=500)
    with pytest.raises(DataError, match=r"expected shape \(n, 2\)"):
        model.score(np.ones((3, 4)))
