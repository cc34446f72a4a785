"""Known probability distributions with exact log densities and seeded sampling.

Used as training data for normalizing flows and as the reference for KL(target || model).
Pure numpy/scipy: importing this package does not import TensorFlow.
"""

from __future__ import annotations

from fedhex_hpc.targets.base import ConditionalTarget, Target
from fedhex_hpc.targets.conditional import GaussExpBackground, GaussianAroundCondition
from fedhex_hpc.targets.mixtures import GaussianMixture, random_gaussian_mixture
from fedhex_hpc.targets.registry import TARGETS, get_target, list_targets, target_params
from fedhex_hpc.targets.uniform import UniformBoxMixture

__all__ = [
    "TARGETS",
    "ConditionalTarget",
    "GaussExpBackground",
    "GaussianAroundCondition",
    "GaussianMixture",
    "Target",
    "UniformBoxMixture",
    "get_target",
    "list_targets",
    "random_gaussian_mixture",
    "target_params",
]
