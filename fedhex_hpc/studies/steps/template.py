"""CATHODE's background template and ANODE's scores from trained conditional flows.

A run trained with ``train.keep_best_epochs`` has the flows of its best epochs in
``RUN/ensemble/``; :func:`ensemble_models` loads them (or the run's final model when
there is none). The template draws mjj from a KDE of the signal-region data
(:func:`fit_mjj_kde`) and the features from the ensemble's flows given that mjj, the
rows split evenly over the flows. Rows are made in seeded blocks whose content
depends only on the block index, so :func:`write_template` can split them over MPI
ranks and still write what one process would.

Densities are in physical units: :meth:`FlowModel.log_prob` includes the log-Jacobian
of the preprocessing (logit and standardisation), so log-densities of two flows with
different preprocessing can be subtracted (:func:`anode_scores`). Events outside a
flow's domain (beyond its logit range) have density zero, log-density ``-inf``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, logsumexp
from sklearn.neighbors import KernelDensity

from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.sources.base import Column
from fedhex_hpc.errors import DataError, RunDirError
from fedhex_hpc.flows import SAMPLE_BATCH, FlowModel, load_flow
from fedhex_hpc.runs import RunDir
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.steps.ranks import Comm, write_blocks
from fedhex_hpc.train.trainer import ENSEMBLE_FILE

__all__ = [
    "TEMPLATE_BLOCK",
    "MjjKDE",
    "TemplateSample",
    "anode_scores",
    "ensemble_log_prob",
    "ensemble_models",
    "fit_mjj_kde",
    "sample_template",
    "template_blocks",
    "write_template",
]

#: Rows per seeded block of a template (a block never spans two flows).
TEMPLATE_BLOCK = SAMPLE_BATCH


class MjjKDE:
    """A Gaussian KDE of mjj on the logit of its min-max normalised values (CATHODE).

    Samples map back through the logistic function, so they lie strictly between the
    smallest and largest fitted mjj (inside the signal region the data came from).
    """

    def __init__(self, mjj: np.ndarray, bandwidth: float) -> None:
        self.low, self.high = float(np.min(mjj)), float(np.max(mjj))
        self.bandwidth = bandwidth
        u = (np.asarray(mjj, np.float64) - self.low) / (self.high - self.low)
        u = u[(u > 0) & (u < 1)]  # the extremes have infinite logits (CATHODE drops them)
        self._kde = KernelDensity(bandwidth=bandwidth, kernel="gaussian").fit(
            (np.log(u) - np.log1p(-u))[:, None]
        )

    def sample(self, n: int, seed: int) -> np.ndarray:
        """``n`` mjj values (float64, the fitted mjj's units), reproducible from ``seed``."""
        if n <= 0:
            return np.zeros(0)
        logits = self._kde.sample(n, random_state=seed % 2**32)[:, 0]
        return self.low + (self.high - self.low) * expit(logits)


def fit_mjj_kde(mjj: np.ndarray, bandwidth: float = 0.01) -> MjjKDE:
    """Fit :class:`MjjKDE` to the mjj values of signal-region data (CATHODE: SR train).

    Raises:
        DataError: ``mjj`` is not 1-D, holds NaN/Inf or fewer than 3 distinct values,
            or ``bandwidth`` is not positive.
    """
    mjj = np.asarray(mjj, np.float64)
    if mjj.ndim != 1:
        mjj = mjj.reshape(len(mjj), -1)
        if mjj.shape[1] != 1:
            raise DataError(f"mjj for the KDE must be one column, got shape {mjj.shape}")
        mjj = mjj[:, 0]
    if not np.isfinite(mjj).all():
        raise DataError(f"mjj for the KDE has {np.sum(~np.isfinite(mjj))} NaN/Inf values")
    if len(np.unique(mjj)) < 3:
        raise DataError(f"mjj for the KDE needs at least 3 distinct values, got {len(mjj)} events")
    if not bandwidth > 0:
        raise DataError(f"the KDE bandwidth must be > 0, got {bandwidth}")
    return MjjKDE(mjj, bandwidth)


def ensemble_models(run_dir: str | Path) -> list[FlowModel]:
    """The flows of a run's kept best epochs (``RUN/ensemble/``), best first; without an
    ensemble, the run's final model alone (the restored best epoch).

    Raises:
        RunDirError: not a run, no model, or an unreadable ensemble.
    """
    run = RunDir.open(run_dir)
    listing = run.ensemble / ENSEMBLE_FILE
    if not listing.is_file():
        if not run.model.is_dir():
            raise RunDirError(f"{run.path} has no trained model (no model/ folder)")
        return [load_flow(run.model)]
    try:
        members = json.loads(listing.read_text(encoding="utf-8"))["members"]
        paths = [run.ensemble / m["path"] for m in members]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunDirError(f"{listing} is not a valid ensemble listing ({exc})") from None
    if not paths:
        raise RunDirError(f"{listing} lists no models")
    return [load_flow(p) for p in paths]


def template_blocks(n: int, n_models: int, block: int = TEMPLATE_BLOCK) -> list[tuple[int, int]]:
    """(flow index, rows) of every block of an ``n``-row template over ``n_models`` flows.

    The rows are split evenly over the flows (the first ``n % n_models`` get one more),
    each flow's rows cut into blocks of at most ``block``.
    """
    blocks = []
    for model in range(n_models):
        rows = n // n_models + (model < n % n_models)
        blocks += [(model, min(block, rows - s)) for s in range(0, rows, block)]
    return blocks


class TemplateSample(dict):
    """Template columns by name (the flows' features and condition) plus counts.

    Attributes:
        n_requested: Rows drawn.
        n_dropped: Rows dropped because they fell outside the flows' domain (or were
            not finite); the columns hold ``n_requested - n_dropped`` rows.
    """

    def __init__(self, columns: dict[str, np.ndarray], n_requested: int, n_dropped: int) -> None:
        super().__init__(columns)
        self.n_requested = n_requested
        self.n_dropped = n_dropped


@dataclass(frozen=True)
class _Template:
    """What every block of one template needs."""

    models: list[FlowModel]
    kde: MjjKDE
    blocks: list[tuple[int, int]]
    seed: int

    @property
    def names(self) -> list[str]:
        spec = self.models[0].spec
        return [*spec.feature_names, *spec.condition_names]

    def block(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        model_index, rows = self.blocks[index]
        model = self.models[model_index]
        mjj = self.kde.sample(rows, derive_seed(self.seed, "template_mjj", index))
        cond = mjj.astype(np.float32)[:, None]
        seed = derive_seed(self.seed, "template_flow", index)
        x = model.sample_batched(rows, cond, seed % 2**31, TEMPLATE_BLOCK)
        keep = model.in_domain(x).numpy() & np.isfinite(x).all(axis=1)
        columns = dict(zip(self.names, [*x[keep].T, cond[keep, 0]], strict=True))
        return columns, {"requested": rows, "dropped": int(np.sum(~keep))}


def _template(run_dir: str | Path, mjj_kde: MjjKDE, n: int, seed: int) -> _Template:
    models = ensemble_models(run_dir)
    spec = models[0].spec
    if spec.n_conditions != 1:
        raise RunDirError(
            f"{run_dir}: the template needs a flow conditional on mjj alone, this one is "
            f"conditional on {spec.condition_names or 'nothing'}"
        )
    if n < 1:
        raise DataError(f"the template needs at least one row, got n={n}")
    return _Template(models, mjj_kde, template_blocks(n, len(models)), seed)


def sample_template(run_dir: str | Path, mjj_kde: MjjKDE, n: int, seed: int) -> TemplateSample:
    """Draw an ``n``-row background template from a run's ensemble, in this process.

    Args:
        run_dir: The outer (sideband) run.
        mjj_kde: Where the condition values come from (:func:`fit_mjj_kde`).
        n: Rows to draw, split evenly over the ensemble's flows.
        seed: Seed of the whole template (each block derives its own from it).

    Returns:
        The columns (features, then the condition, by the flow's names), without the
        rows outside the flows' domain; ``n_dropped`` counts those.
    """
    template = _template(run_dir, mjj_kde, n, seed)
    parts = [template.block(i) for i in range(len(template.blocks))]
    columns = {
        name: np.concatenate([p[0][name] for p in parts]).astype(np.float32)
        for name in template.names
    }
    return TemplateSample(columns, n, sum(p[1]["dropped"] for p in parts))


def write_template(
    run_dir: str | Path,
    mjj_kde: MjjKDE,
    n: int,
    seed: int,
    out: str | Path,
    comm: Comm | None = None,
    split: str = "train",
) -> Manifest:
    """:func:`sample_template` written as a dataset folder, the blocks split over ranks.

    Every rank calls it; each writes its shard, rank 0 the manifest (``options``
    records the run, n, seed and the counts of requested and dropped rows). The rows,
    read in shard order, are those of :func:`sample_template` for any number of ranks.
    """
    template = _template(run_dir, mjj_kde, n, seed)
    spec = template.models[0].spec
    columns = [Column(name, "feature") for name in spec.feature_names] + [
        Column(spec.condition_names[0], "condition")
    ]
    options = {
        "run": str(Path(run_dir).resolve()),
        "n": n,
        "seed": seed,
        "models": len(template.models),
        "kde_bandwidth": mjj_kde.bandwidth,
    }
    return write_blocks(
        out, len(template.blocks), template.block, columns, "template", options, comm, split
    )


def ensemble_log_prob(run_dir: str | Path, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
    """Log of the mean density of a run's ensemble at events ``x`` (n, d) given ``mjj``.

    Physical units (preprocessing Jacobian included); ``-inf`` outside the domain.
    """
    models = ensemble_models(run_dir)
    cond = np.asarray(mjj, np.float32).reshape(len(x), -1)
    logs = np.stack([m.log_prob_batched(x, cond) for m in models])
    return logsumexp(logs, axis=0) - np.log(len(models))


def anode_scores(
    inner_run: str | Path, outer_run: str | Path, x: np.ndarray, mjj: np.ndarray
) -> np.ndarray:
    """ANODE's score log p_in(x|mjj) - log p_out(x|mjj), both in physical units.

    Args:
        inner_run: The signal-region flow's run.
        outer_run: The sideband flow's run.
        x: Events (n, d) in the flows' feature order.
        mjj: Their mjj (n,).

    Returns:
        Scores (n,), float64; ``-inf`` for events outside either flow's domain
        (count them with ``np.isneginf``), never NaN or ``+inf`` from a zero density.
    """
    inner = ensemble_log_prob(inner_run, x, mjj)
    outer = ensemble_log_prob(outer_run, x, mjj)
    inside = np.isfinite(inner) & np.isfinite(outer)
    return np.where(inside, inner - np.where(inside, outer, 0.0), -np.inf)
