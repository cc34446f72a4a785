"""Tests for fedhex_hpc.evaluate.plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fedhex_hpc.evaluate import (
    bounds_from_samples,
    plot_density_2d,
    plot_loss_curves,
    plot_marginals,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png_only(path: Path, directory: Path) -> None:
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in directory.iterdir()] == [path.name]


def _log_normal_2d(x: np.ndarray) -> np.ndarray:
    return stats.norm.logpdf(x).sum(axis=1)


def _log_uniform_box(x: np.ndarray) -> np.ndarray:
    inside = np.all(np.abs(x) <= 1.0, axis=1)
    return np.where(inside, np.log(0.25), -np.inf)


@pytest.mark.parametrize("with_val", [True, False])
def test_plot_loss_curves(tmp_path: Path, with_val: bool) -> None:
    history = pd.DataFrame({"epoch": np.arange(1, 6), "loss": [3.0, 2.0, 1.5, 1.2, 1.1]})
    if with_val:
        history["val_loss"] = history["loss"] + 0.1
    out = plot_loss_curves(history, tmp_path / "loss.png", title="run 0")
    assert out == tmp_path / "loss.png"
    _assert_png_only(out, tmp_path)


def test_plot_loss_curves_missing_column(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history: expected columns epoch, loss"):
        plot_loss_curves(pd.DataFrame({"epoch": [1]}), tmp_path / "loss.png")


def test_plot_density_2d_with_zero_density_target(tmp_path: Path) -> None:
    out = plot_density_2d(
        _log_uniform_box, _log_normal_2d, ((-3, 3), (-3, 3)), tmp_path / "d.png", grid=50
    )
    _assert_png_only(out, tmp_path)


def test_plot_density_2d_rejects_bad_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="log_q_fn: expected shape"):
        plot_density_2d(
            _log_normal_2d, lambda x: np.zeros(3), ((-1, 1), (-1, 1)), tmp_path / "d.png"
        )
    with pytest.raises(ValueError, match="bounds: expected lo < hi"):
        plot_density_2d(_log_normal_2d, _log_normal_2d, ((1, -1), (-1, 1)), tmp_path / "d.png")
    assert list(tmp_path.iterdir()) == []


def test_plot_marginals(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gen, ref = rng.normal(size=(2000, 5)), rng.normal(size=(3000, 5))
    out = plot_marginals(gen, ref, [f"f{i}" for i in range(5)], tmp_path / "sub" / "m.png")
    _assert_png_only(out, tmp_path / "sub")


def test_plot_marginals_mismatched_features(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"reference: expected 2 features \(as in generated\), got 3"
    ):
        plot_marginals(np.ones((5, 2)), np.ones((5, 3)), ["a", "b"], tmp_path / "m.png")


def test_failed_save_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied.png"
    target.mkdir()
    history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5]})
    with pytest.raises(OSError):
        plot_loss_curves(history, target)
    assert [p.name for p in tmp_path.iterdir()] == ["occupied.png"]


def test_bounds_from_samples() -> None:
    x = np.column_stack([np.linspace(0.0, 10.0, 1001), np.full(1001, 2.0)])
    bounds = bounds_from_samples(x, pad=0.1, quantile=0.0)
    assert bounds[0] == pytest.approx((-1.0, 11.0))
    assert bounds[1] == pytest.approx((1.5, 2.5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.ones(5)}, "x: expected a 2-d array"),
        ({"x": np.ones((5, 2)), "pad": -1.0}, "pad"),
        ({"x": np.ones((5, 2)), "quantile": 0.5}, "quantile"),
    ],
)
def test_bounds_from_samples_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bounds_from_samples(**kwargs)
