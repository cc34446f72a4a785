"""The stages of an interpolation study: plan, then one task per fold.

1. :func:`plan_study` reads the labelled data, drops points with too few events
   (a report line each), makes the folds, checks every named point and the flow
   config, and writes ``study.json``: bad input fails here, before any training.
2. :func:`run_fold` writes the fold's training events to a file, trains the
   conditional flow on it (resuming an interrupted run), and judges the flow and
   both baselines at every held-out point and at the control training points.
3. :func:`~fedhex_hpc.studies.interpolation.collect.collect` merges the folds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fedhex_hpc.errors import ConfigError, DataError
from fedhex_hpc.io_utils import atomic_path
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.base import run_task
from fedhex_hpc.studies.interpolation.baselines import morphed_events
from fedhex_hpc.studies.interpolation.folder import InterpolationFolder
from fedhex_hpc.studies.interpolation.geometry import LabelSpace
from fedhex_hpc.studies.interpolation.judge import histograms, judge_events
from fedhex_hpc.studies.interpolation.labelled import LabelledData, format_point, open_data
from fedhex_hpc.studies.interpolation.spec import (
    InterpolationSpec,
    flow_config,
    load_spec,
    spec_record,
)
from fedhex_hpc.studies.interpolation.split import make_folds

__all__ = ["METHODS", "plan_study", "run_fold"]

#: The generators judged at every point: the flow and the two baselines.
METHODS = ("flow", "nearest", "morph")


def _columns(data: LabelledData, spec: InterpolationSpec) -> tuple[list[str], list[str], bool]:
    return data.features, data.labels, spec.equalise_weights


def plan_study(
    spec_path: str | Path,
    out_dir: str | Path,
    small: bool = False,
    dataset: str | Path | None = None,
) -> str:
    """Plan an interpolation study into ``out_dir``; planning it again is a no-op.

    Args:
        spec_path: The spec (a file or a bundled name such as ``interp_grid``).
        out_dir: The study folder to create.
        small: Use the spec's ``small`` variant.
        dataset: A dataset folder replacing the spec's ``data.dataset``.

    Returns:
        What was planned, with one report line per dropped point.

    Raises:
        ConfigError: A bad spec or flow config, a split leaving fewer than two
            training points, or a folder holding another study.
        DataError: Missing data or label columns, a named point that is not in the
            data or has too few events, fewer than three usable points.
    """
    spec = load_spec(spec_path, small, dataset)
    data = open_data(spec.data, spec.seed)
    folds = make_folds(spec.split, data)
    flow_config(spec, Path("training.h5"), 0, _columns(data, spec))
    record = json.loads(
        json.dumps(
            {
                "name": spec.name,
                "small": small,
                "spec": spec_record(spec),
                "labels": data.labels,
                "features": data.features,
                "exact": data.target is not None,
                "points": data.points.tolist(),
                "counts": data.counts,
                "dropped": data.dropped,
                "folds": [f.to_dict() for f in folds],
            }
        )
    )
    folder = InterpolationFolder(out_dir)
    if folder.has_marker():
        old = folder.meta()
        if any(old.get(k) != record[k] for k in ("spec", "points", "folds")):
            raise ConfigError(f"{folder.path} already holds another study; plan into a new folder")
    else:
        folder.write_marker(record)
    heldout = sorted({i for f in folds for i in f.heldout})
    lines = [
        f"interpolation study {spec.name} in {folder.path}: {len(data.points)} label points "
        f"({', '.join(data.labels)}), {len(heldout)} held out, {len(folds)} fold(s) = tasks",
        *data.dropped,
    ]
    return "\n".join(lines)


def _write_training(path: Path, data: LabelledData, training: list[int], equalise: bool) -> None:
    """The training points' events with their labels (and equalising weights) as HDF5."""
    if path.is_file():
        return
    events = [data.training_events(i) for i in training]
    x = np.concatenate(events)
    cond = np.concatenate(
        [
            np.repeat(data.points[i][None, :], len(e), 0)
            for i, e in zip(training, events, strict=True)
        ]
    )
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        for j, name in enumerate(data.features):
            fh.create_dataset(name, data=x[:, j].astype(np.float32))
        for j, name in enumerate(data.labels):
            fh.create_dataset(name, data=cond[:, j].astype(np.float32))
        if equalise:
            per_point = len(x) / len(events)
            weight = np.concatenate([np.full(len(e), per_point / len(e)) for e in events])
            fh.create_dataset("weight", data=weight.astype(np.float32))


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x).all(axis=1)]


def _judge_point(
    model: Any,
    data: LabelledData,
    space: LabelSpace,
    plan: dict[str, Any],
    index: int,
    role: str,
    spec: InterpolationSpec,
) -> dict[str, Any]:
    from fedhex_hpc.evaluate.metrics import kl_divergence
    from fedhex_hpc.studies.steps import draw_samples

    fold, seed, training = plan["fold"], spec.seed, plan["training"]
    point = data.points[index]
    truth = data.truth_events(index, role == "heldout").astype(np.float64)
    n_gen = spec.judge.n_generated
    cond = np.repeat(point[None, :], n_gen, 0).astype(np.float32)
    generated = draw_samples(
        model, n_gen, cond, seed=derive_seed(seed, "interp_generated", fold, index)
    )
    flow_events = _finite(generated.astype(np.float64))
    nearest = training[space.nearest(point)]
    nearest_events = data.training_events(nearest).astype(np.float64)
    morph_idx, morph_w = space.morph_weights(point)
    neighbours = [training[i] for i in morph_idx]
    morph = morphed_events(
        [data.training_events(i).astype(np.float64) for i in neighbours], morph_w, nearest_events
    )
    kl = None
    if data.target is not None:
        truth_cond = np.repeat(point[None, :], len(truth), 0)
        log_p = data.target.log_prob(truth, truth_cond)
        log_q = model.log_prob_batched(truth.astype(np.float32), truth_cond.astype(np.float32))
        estimate = kl_divergence(log_p, log_q)
        kl = (estimate.value, estimate.stderr)
    methods = {}
    for m, (name, events) in enumerate(
        zip(METHODS, (flow_events, nearest_events, morph), strict=True)
    ):
        seeds = (
            derive_seed(seed, "interp_bootstrap", fold, index, m),
            derive_seed(seed, "interp_auc", fold, index, m),
        )
        methods[name] = judge_events(
            truth, events, data.features, spec.judge, seeds, kl if name == "flow" else None
        )
    return {
        "fold": fold,
        "index": index,
        "point": point.tolist(),
        "label": format_point(data.labels, point),
        "role": role,
        "extrapolation": space.outside_hull(point) if role == "heldout" else False,
        "n_truth": len(truth),
        "flow_non_finite": n_gen - len(flow_events),
        "nearest_point": data.points[nearest].tolist(),
        "morph_points": [data.points[i].tolist() for i in neighbours],
        "morph_weights": [float(w) for w in morph_w],
        "truth_hist": histograms(truth, truth, spec.judge.bins),
        "methods": methods,
    }


def run_fold(study_dir: str | Path, task_id: int, force: bool = False) -> dict[str, Any]:
    """Train fold ``task_id``'s flow and judge it and the baselines; write its result.

    Raises:
        ConfigError: Not a study folder, or a fold outside the plan.
        DataError: The data changed since the study was planned.
    """
    folder = InterpolationFolder(study_dir)
    plan = {**folder.fold(task_id), "fold": task_id}
    fold_dir = folder.fold_dir(task_id)

    def work() -> dict[str, Any]:
        from fedhex_hpc.flows import load_flow
        from fedhex_hpc.studies.steps import ensure_trained

        meta = folder.meta()
        spec = folder.spec()
        data = open_data(spec.data, spec.seed)
        if data.points.tolist() != meta["points"]:
            raise DataError(
                f"{spec.data.dataset or spec.data.target}: the label points changed since the "
                "study was planned; plan a new study"
            )
        training_file = fold_dir / "training.h5"
        _write_training(training_file, data, plan["training"], spec.equalise_weights)
        config = flow_config(spec, training_file, task_id, _columns(data, spec))
        run = ensure_trained(config, fold_dir / "run")
        model = load_flow(run.model)
        space = LabelSpace(data.points[plan["training"]], data.points)
        judged = [("heldout", i) for i in plan["heldout"]] + [
            ("control", i) for i in plan["controls"]
        ]
        points = [_judge_point(model, data, space, plan, i, role, spec) for role, i in judged]
        status = run.status()
        return {
            "fold": task_id,
            "epochs": status.get("epochs"),
            "best_val_loss": status.get("best_val_loss"),
            "points": points,
        }

    return run_task(folder, task_id, work, force, scratch=(fold_dir,))
