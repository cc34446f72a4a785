"""The named targets of the thesis studies, as factories keyed by registry name.

Every factory takes only keyword parameters with defaults (most take none), so
``TARGETS[name]()`` builds the thesis configuration. Parameter values are checked here
and reported as ``ConfigError``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence

import numpy as np

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.targets.base import Target
from fedhex_hpc.targets.conditional import GaussExpBackground, GaussianAroundCondition
from fedhex_hpc.targets.mixtures import GaussianMixture, random_gaussian_mixture
from fedhex_hpc.targets.uniform import UniformBoxMixture

__all__ = ["TARGETS", "Factory"]

Factory = Callable[..., Target]

_X = ("x",)
_XY = ("x", "y")
_FEDHEX_SIGMA = 0.025
_FEDHEX_STEPS = np.arange(10) / 9.0
_INNFER_HELDOUT = (168.0, 171.0, 174.0, 177.0)


def _integer(param: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int ``>= minimum`` or raise ``ConfigError``."""
    try:
        number = operator.index(value)  # rejects floats and strings
    except TypeError:
        raise ConfigError(f"{param} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise ConfigError(f"{param} must be an integer >= {minimum}, got {value!r}")
    return number


def _positive(param: str, value: object) -> float:
    """Return ``value`` as a finite float ``> 0`` or raise ``ConfigError``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{param} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{param} must be a finite number > 0, got {value!r}")
    return number


def _diagonal_mixture(
    name: str,
    description: str,
    means: Sequence[Sequence[float]],
    variances: float | Sequence[Sequence[float]],
) -> tuple[str, Factory]:
    """Registry entry for a Gaussian mixture with diagonal covariances and equal weights."""

    def factory() -> Target:
        return GaussianMixture.with_diagonal_covariances(
            name=name,
            description=description,
            means=means,
            variances=variances,
            feature_names=_X if len(means[0]) == 1 else _XY,
        )

    return name, factory


def _uniform_strips(
    name: str, description: str, x_centres: Sequence[float], half_width: float
) -> tuple[str, Factory]:
    """Registry entry for equal-weight uniform strips ``|x - centre| <= half_width``, |y| <= 2."""

    def factory() -> Target:
        centres = np.asarray(x_centres, dtype=np.float64)
        return UniformBoxMixture(
            name=name,
            description=description,
            lows=np.stack([centres - half_width, np.full_like(centres, -2.0)], axis=1),
            highs=np.stack([centres + half_width, np.full_like(centres, 2.0)], axis=1),
            feature_names=_XY,
        )

    return name, factory


def _random_2d(name: str) -> tuple[str, Factory]:
    """Registry entry for the random 2D mixture (locations in ``U(-7, 7)^2``)."""

    def factory(*, n_components: int = 7, seed: int = 1234) -> Target:
        return random_gaussian_mixture(
            name=name,
            dim=2,
            n_components=_integer("n_components", n_components, 1),
            radius=7.0,
            seed=_integer("seed", seed, 0),
        )

    return name, factory


def _random_10d(name: str) -> tuple[str, Factory]:
    """Registry entry for the random 10D mixture (thesis radii 15, 10, 4 and 2.2)."""

    def factory(*, radius: float = 4.0, n_components: int = 7, seed: int = 1234) -> Target:
        return random_gaussian_mixture(
            name=name,
            dim=10,
            n_components=_integer("n_components", n_components, 1),
            radius=_positive("radius", radius),
            seed=_integer("seed", seed, 0),
        )

    return name, factory


def _around_centres(name: str, description: str, centres: np.ndarray) -> tuple[str, Factory]:
    """Registry entry for a FEDHEX target ``x | c ~ N(c, 0.025^2 I)``."""

    def factory() -> Target:
        return GaussianAroundCondition(
            name=name,
            description=description,
            centres=centres,
            sigma=_FEDHEX_SIGMA,
            feature_names=_XY,
            condition_names=("cx", "cy"),
        )

    return name, factory


def _gauss_exp_bkg(name: str) -> tuple[str, Factory]:
    """Registry entry for the INNFER peak-on-exponential-background target."""

    def factory(*, signal_fraction: float = 0.3) -> Target:
        masses = np.arange(166.0, 181.0)
        try:
            fraction = float(signal_fraction)
        except (TypeError, ValueError):
            fraction = math.nan
        if isinstance(signal_fraction, bool) or not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"signal_fraction must be in [0, 1], got {signal_fraction!r}")
        return GaussExpBackground(
            name=name,
            description=(
                "0.3 N(m, (0.01 m)^2) + 0.7 Exp(0.05), both truncated to [160, 185]; "
                "cond = true mass m (target_params: signal_fraction, default 0.3; 1 is the "
                "peak alone, 0 the background alone)"
            ),
            low=160.0,
            high=185.0,
            signal_fraction=fraction,
            resolution=0.01,
            slope=0.05,
            train_masses=[m for m in masses if m not in _INNFER_HELDOUT],
            heldout_masses=_INNFER_HELDOUT,
        )

    return name, factory


TARGETS: dict[str, Factory] = dict(
    [
        _diagonal_mixture("dim1/gaussian", "N(-2.5, 0.5^2)", [[-2.5]], 0.25),
        _diagonal_mixture(
            "dim1/two_gaussians",
            "equal mixture of N(-2.5, 0.5^2) and N(2.5, 0.5^2)",
            [[-2.5], [2.5]],
            0.25,
        ),
        _diagonal_mixture("dim2/one_gaussian", "standard normal N(0, I)", [[0.0, 0.0]], 1.0),
        _diagonal_mixture(
            "dim2/two_gaussians",
            "2 Gaussians at (-2.5, -2.5) and (2.5, 2.5), variance 1",
            [[-2.5, -2.5], [2.5, 2.5]],
            1.0,
        ),
        _diagonal_mixture(
            "dim2/three_in_row",
            "3 Gaussians at x = -5, 0, 5 on y = 0, variance 0.3",
            [[-5.0, 0.0], [0.0, 0.0], [5.0, 0.0]],
            0.3,
        ),
        _diagonal_mixture(
            "dim2/four_in_row",
            "4 Gaussians at x = -7.5, -2.5, 2.5, 7.5 on y = 0, variance 0.3",
            [[-7.5, 0.0], [-2.5, 0.0], [2.5, 0.0], [7.5, 0.0]],
            0.3,
        ),
        _diagonal_mixture(
            "dim2/four_diagonal",
            "4 Gaussians on y = -x at x = -7.5, -2.5, 2.5, 7.5, variance 0.3",
            [[-7.5, 7.5], [-2.5, 2.5], [2.5, -2.5], [7.5, -7.5]],
            0.3,
        ),
        _diagonal_mixture(
            "dim2/four_connected",
            "4 overlapping axis-elongated Gaussians forming a connected chain",
            [[-5.0, 1.5], [-1.5, 1.5], [1.5, -1.5], [3.0, -5.0]],
            [[1.0, 4.0], [3.0, 1.0], [1.0, 3.0], [4.0, 1.0]],
        ),
        _diagonal_mixture(
            "dim2/grid3x3",
            "3x3 grid of Gaussians at {-5, 0, 5}^2, variance 0.3",
            [[x, y] for x in (-5.0, 0.0, 5.0) for y in (-5.0, 0.0, 5.0)],
            0.3,
        ),
        _uniform_strips("dim2/uniform1", "uniform on [-1, 1] x [-2, 2]", [0.0], 1.0),
        _uniform_strips(
            "dim2/uniform3",
            "3 unit-width uniform strips centred at x = -2, 0, 2; |y| <= 2",
            [-2.0, 0.0, 2.0],
            0.5,
        ),
        _uniform_strips(
            "dim2/uniform4",
            "4 unit-width uniform strips centred at x = -3, -1, 1, 3; |y| <= 2",
            [-3.0, -1.0, 1.0, 3.0],
            0.5,
        ),
        _random_2d("dim2/random_gaussians"),
        _random_10d("dim10/random_gaussians"),
        _around_centres(
            "cond/line",
            "x ~ N(c, 0.025^2 I); c on 10 points of the diagonal (0,0)-(1,1)",
            np.stack([_FEDHEX_STEPS, _FEDHEX_STEPS], axis=1),
        ),
        _around_centres(
            "cond/grid",
            "x ~ N(c, 0.025^2 I); c on a 10x10 grid in the unit square",
            np.stack(np.meshgrid(_FEDHEX_STEPS, _FEDHEX_STEPS, indexing="ij"), -1).reshape(-1, 2),
        ),
        _gauss_exp_bkg("cond/gauss_exp_bkg"),
    ]
)
