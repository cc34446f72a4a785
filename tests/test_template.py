"""Background template, ensemble densities and ANODE scores (studies/steps/template.py)."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest

from fedhex_hpc.config import FlowConfig, load_config, parse_config
from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.shards import open_shard
from fedhex_hpc.errors import DataError
from fedhex_hpc.flows import FlowModel, Preprocessing, Standardization, build_flow, load_flow
from fedhex_hpc.resources import resolve
from fedhex_hpc.runs import RunDir
from fedhex_hpc.studies.steps import train_run
from fedhex_hpc.studies.steps.ranks import SingleRank, rank_blocks
from fedhex_hpc.studies.steps.template import (
    anode_scores,
    ensemble_log_prob,
    ensemble_models,
    fit_mjj_kde,
    sample_template,
    template_blocks,
    write_template,
)

from .ci import require
from .conftest import mpirun, small_raw


def _toy(rng, n, mjj_range, spread):
    mjj = rng.uniform(*mjj_range, n)
    return {"a": rng.normal(0.3 * mjj, spread), "b": rng.gamma(2.0, 0.1, n) + mjj / 10, "mjj": mjj}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An outer run (wide, with a 2-epoch ensemble) and an inner run (narrower, none)."""
    root = tmp_path_factory.mktemp("template")
    rng = np.random.default_rng(0)
    out = {}
    for name, mjj_range, spread, keep in (
        ("outer", (2.8, 4.2), 0.3, 2),
        ("inner", (3.3, 3.7), 0.1, 0),
    ):
        np.savez(root / f"{name}.npz", **_toy(rng, 3000, mjj_range, spread))
        config = parse_config(
            small_raw(
                data={
                    "source": "file",
                    "path": str(root / f"{name}.npz"),
                    "features": ["a", "b"],
                    "conditions": ["mjj"],
                },
                flow={
                    "preprocessing": "logit",
                    "batch_norm": True,
                    "batch_norm_stats": "epoch_pass",
                },
                train={"max_epochs": 3, "keep_best_epochs": keep, "checkpoint_every": 1},
            )
        )
        train_run(config, root / name)
        out[name] = root / name
    out["root"] = root
    return out


def test_bundled_lhco_configs_hold_the_cathode_recipe():
    for name in ("lhco/cathode", "lhco/anode_inner"):
        config = load_config(resolve("config", name), ["data.path=sb"])
        assert (config.flow.n_blocks, config.flow.hidden_units) == (15, [128, 128])
        assert (config.flow.batch_norm, config.flow.batch_norm_stats) == (True, "epoch_pass")
        assert (config.flow.permutation, config.flow.preprocessing) == ("reverse", "logit")
        assert (config.train.learning_rate, config.train.weight_decay) == (1e-4, 1e-6)
        assert (config.train.batch_size, config.train.max_epochs) == (256, 100)
        assert (config.train.keep_best_epochs, config.train.checkpoint_every) == (10, 1)


def _twin_without_preprocessing(model: FlowModel) -> FlowModel:
    """The same flow (same seed, so the same initial weights) on the working space."""
    n = model.spec.n_features
    spec = type(model.spec)(
        **{
            **model.spec.__dict__,
            "preprocessing": Preprocessing("none", Standardization.identity(n)),
        }
    )
    return FlowModel(spec)


def test_log_prob_of_a_logit_flow_is_a_density_in_physical_units():
    rng = np.random.default_rng(1)
    x = np.stack([rng.uniform(2.0, 5.0, 500), rng.normal(0.0, 1.0, 500)], axis=1)
    cond = rng.uniform(3.0, 4.0, (500, 1))
    flow = FlowConfig(n_blocks=2, hidden_units=[16], preprocessing="logit", logit_alpha=0.05)
    model = build_flow(flow, 3, x, cond, ["u", "v"], ["mjj"])
    pre = model.spec.preprocessing
    low, high = np.asarray(pre.low), np.asarray(pre.high)
    mean, std = np.asarray(pre.scaling.mean), np.asarray(pre.scaling.std)
    # change of variables by hand: u = (logit((x - low) / (high - low)) - mean) / std
    points = np.stack([rng.uniform(low[0], high[0], 200), rng.uniform(low[1], high[1], 200)], 1)
    t = (points - low) / (high - low)
    u = (np.log(t) - np.log1p(-t) - mean) / std
    log_jacobian = np.sum(np.log(1 / (points - low) + 1 / (high - points)) - np.log(std), axis=1)
    c = cond[:200]
    working = _twin_without_preprocessing(model).log_prob_batched(u, c)
    np.testing.assert_allclose(
        model.log_prob_batched(points, c), working + log_jacobian, rtol=1e-4, atol=1e-4
    )
    # and it integrates to one over the domain (midpoint rule on a grid)
    grid = [np.linspace(lo, hi, 401) for lo, hi in zip(low, high, strict=True)]
    mids = [(g[1:] + g[:-1]) / 2 for g in grid]
    mesh = np.stack([m.ravel() for m in np.meshgrid(*mids, indexing="ij")], axis=1)
    density = np.exp(model.log_prob_batched(mesh, np.full((len(mesh), 1), 3.5)))
    cell = np.prod([g[1] - g[0] for g in grid])
    assert density.sum() * cell == pytest.approx(1.0, abs=0.02)


def test_mjj_kde_samples_inside_the_fitted_range_reproducibly():
    rng = np.random.default_rng(2)
    mjj = rng.uniform(3.3, 3.7, 5000)
    kde = fit_mjj_kde(mjj)
    a, b = kde.sample(20_000, seed=5), kde.sample(20_000, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, kde.sample(20_000, seed=6))
    assert mjj.min() < a.min() and a.max() < mjj.max()
    assert np.mean(a) == pytest.approx(np.mean(mjj), abs=0.01)
    assert np.std(a) == pytest.approx(np.std(mjj), rel=0.03)
    with pytest.raises(DataError, match="NaN/Inf"):
        fit_mjj_kde(np.array([3.4, np.nan, 3.5, 3.6]))
    with pytest.raises(DataError, match="one column"):
        fit_mjj_kde(np.ones((5, 2)))
    with pytest.raises(DataError, match="at least 3 distinct"):
        fit_mjj_kde(np.full(10, 3.5))


def test_template_blocks_split_rows_evenly_over_models_and_ranks():
    assert template_blocks(1001, 2, block=300) == [(0, 300), (0, 201), (1, 300), (1, 200)]
    assert sum(r for _, r in template_blocks(400_000, 10)) == 400_000
    assert [list(rank_blocks(3, r, 2)) for r in range(2)] == [[0], [1, 2]]
    assert [list(rank_blocks(1, r, 2)) for r in range(2)] == [[], [0]]


def test_sample_template_uses_every_ensemble_model_and_counts_dropped_rows(runs):
    models = ensemble_models(runs["outer"])
    assert len(models) == 2
    kde = fit_mjj_kde(np.random.default_rng(3).uniform(3.3, 3.7, 2000))
    template = sample_template(runs["outer"], kde, 1001, seed=4)
    assert list(template) == ["a", "b", "mjj"]
    kept = len(template["a"])
    assert kept + template.n_dropped == template.n_requested == 1001
    x = np.stack([template["a"], template["b"]], axis=1)
    assert models[0].in_domain(x).numpy().all()
    assert ((template["mjj"] > 3.3) & (template["mjj"] < 3.7)).all()
    again = sample_template(runs["outer"], kde, 1001, seed=4)
    np.testing.assert_array_equal(template["a"], again["a"])
    # the inner run has no ensemble: its final model alone
    assert len(ensemble_models(runs["inner"])) == 1


def test_ensemble_log_prob_is_the_log_of_the_mean_density(runs):
    rng = np.random.default_rng(5)
    toy = _toy(rng, 300, (3.3, 3.7), 0.1)
    x, mjj = np.stack([toy["a"], toy["b"]], axis=1), toy["mjj"]
    members = [m.log_prob_batched(x, mjj[:, None]) for m in ensemble_models(runs["outer"])]
    expected = np.log(np.mean(np.exp(members), axis=0))
    np.testing.assert_allclose(ensemble_log_prob(runs["outer"], x, mjj), expected, rtol=1e-6)
    final = load_flow(RunDir.open(runs["inner"]).model).log_prob_batched(x, mjj[:, None])
    np.testing.assert_array_equal(ensemble_log_prob(runs["inner"], x, mjj), final)


def test_anode_scores_subtract_physical_densities_and_flag_events_outside_a_domain(runs):
    rng = np.random.default_rng(6)
    toy = _toy(rng, 300, (3.3, 3.7), 0.1)
    x, mjj = np.stack([toy["a"], toy["b"]], axis=1), toy["mjj"]
    inner_pre = load_flow(RunDir.open(runs["inner"]).model).spec.preprocessing
    outer_pre = ensemble_models(runs["outer"])[0].spec.preprocessing
    x[0, 0] = inner_pre.high[0] + 0.01  # outside the inner domain, inside the outer one
    x[1, 0] = outer_pre.high[0] + 0.01  # outside both
    assert inner_pre.high[0] + 0.01 < outer_pre.high[0]
    scores = anode_scores(runs["inner"], runs["outer"], x, mjj)
    inner = ensemble_log_prob(runs["inner"], x, mjj)
    outer = ensemble_log_prob(runs["outer"], x, mjj)
    assert np.isneginf(scores[:2]).all() and np.isfinite(scores[2:]).all()
    np.testing.assert_allclose(scores[2:], inner[2:] - outer[2:])
    # roles swapped, event 0 is outside the denominator's domain only: -inf, never +inf
    swapped = anode_scores(runs["outer"], runs["inner"], x, mjj)
    assert np.isneginf(swapped[:2]).all()
    np.testing.assert_allclose(swapped[2:], outer[2:] - inner[2:])
    same = anode_scores(runs["outer"], runs["outer"], x[3:], mjj[3:])
    np.testing.assert_array_equal(same, np.zeros(len(same)))


def _rows(folder):
    manifest = Manifest.read(folder)
    parts = []
    for shard in manifest.shards:
        with open_shard(folder / shard.path) as fh:
            parts.append(fh["data"][:])
    return manifest, np.concatenate(parts)


def test_template_dataset_on_two_mpi_ranks_equals_one_process(runs, tmp_path):
    require(shutil.which("mpirun") is not None, "mpirun (Debian openmpi-bin)")
    require(importlib.util.find_spec("mpi4py") is not None, "mpi4py (the hpc extra)")
    root = runs["root"]
    np.savez(tmp_path / "sr.npz", mjj=np.random.default_rng(7).uniform(3.3, 3.7, 2000))
    command = [
        *(sys.executable, "-m", "fedhex_hpc.cli", "sample"),
        *(str(root / "outer"), "--template", "-n", "1001", "--seed", "4"),
        *("--cond-file", str(tmp_path / "sr.npz"), "-o", str(tmp_path / "two")),
    ]
    result = mpirun(2, *command)
    assert "on 2 rank(s)" in result.stdout
    two_manifest, two = _rows(tmp_path / "two")
    assert [s.path for s in two_manifest.shards] == [
        "shards/train/background/part-00000.h5",
        "shards/train/background/part-00001.h5",
    ]
    kde = fit_mjj_kde(np.load(tmp_path / "sr.npz")["mjj"])
    one_manifest = write_template(root / "outer", kde, 1001, 4, tmp_path / "one", SingleRank())
    _, one = _rows(tmp_path / "one")
    np.testing.assert_array_equal(two, one)
    template = sample_template(root / "outer", kde, 1001, seed=4)
    np.testing.assert_array_equal(one, np.stack(list(template.values()), axis=1))
    assert two_manifest.options["counts"] == one_manifest.options["counts"]
    assert two_manifest.splits["train"]["background"] == len(one)
    assert [c["role"] for c in two_manifest.columns] == ["feature", "feature", "condition"]
