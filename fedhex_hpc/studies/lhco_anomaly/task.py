"""One anomaly-detection task: build the method's two classes, train, score the test set.

Per method, the classifier separates (label 1 vs label 0):

* ``cathode``: SR data vs the template sampled from the SB flow;
* ``idealized``: SR data vs extra simulated SR background;
* ``supervised``: simulated signal vs simulated SR background;
* ``cwola``: SR data vs the adjacent mjj strips (classes balanced by weights);
* ``anode`` takes no classifier: log p_in - log p_out of the SR and SB flows.

Every method is judged on the labelled test set (SIC, AUC, rejection), its closure
(the score separating held-out events of the method's own background model from
true SR background: consistent with 0.5 when no signal is injected) and sculpting
(the mjj shape of true background after score cuts against the one before).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fedhex_hpc.config import parse_section
from fedhex_hpc.data.sources.lhco import EXTENDED_FEATURES, feature_names
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.base import run_task
from fedhex_hpc.studies.lhco_anomaly.folder import LhcoFolder
from fedhex_hpc.studies.lhco_anomaly.shared import GroupSteps, step_seconds

__all__ = ["Task", "run_one"]

_COLUMNS = [*EXTENDED_FEATURES, "mjj", "label"]
#: Per method: (label-1 source, label-0 source) as (dataset, split-suffix) names.
_CLASSES = {
    "cathode": ("sr", "template"),
    "idealized": ("sr", "sim_bkg"),
    "supervised": ("sim_sig", "sim_bkg"),
    "cwola": ("sr", "strips"),
}


#: The parts of the data a task feeds its classifier (each gets its own noise columns).
_PARTS = ("train1", "train0", "val1", "val0", "test", "reference")


class Task:
    """The data access, seeds and inputs of one task (what its scorer builds too)."""

    def __init__(self, folder: LhcoFolder, task_id: int) -> None:
        self.folder = folder
        self.task = folder.tasks()[task_id]
        self.task_id = task_id
        self.steps = GroupSteps(folder, int(self.task["group"]))
        self.spec = self.steps.spec
        self.features = self.task["features"]
        self.timings: dict[str, float] = {}
        #: ANODE: events outside either flow's domain, per part of the data.
        self.outside_domain: dict[str, int] = {}
        self._template: dict[str, dict[str, np.ndarray]] | None = None
        #: The task's seed: its classifier, noise inputs and closure bootstrap derive from it.
        self.seed = derive_seed(self.steps.seed, "lhco_task", task_id)

    def source(self, name: str, split: str) -> dict[str, np.ndarray]:
        """Columns of a prepared split, or of a template part."""
        if name == "template":
            return self.template()[split]
        return self.steps.prepared().columns(name, split, _COLUMNS)

    def template(self) -> dict[str, dict[str, np.ndarray]]:
        """The group's template parts, read once per task."""
        if self._template is None:
            self._template = self.steps.template(self.features)
        return self._template

    def inputs(self, columns: dict[str, np.ndarray], part: str) -> np.ndarray:
        """The classifier's inputs of one part of the data (its own noise columns)."""
        from fedhex_hpc.classifiers import classifier_inputs

        noise = int(self.task["noise"])
        return classifier_inputs(
            columns, feature_names(self.features), noise, self.seed, part=_PARTS.index(part)
        )

    def anode(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """ANODE's scores of events from the group's trained inner and outer flows.

        ``-inf`` for events outside either flow's domain (see ``anode_scores``).
        """
        from fedhex_hpc.studies.steps.template import anode_scores

        x = np.stack([columns[n] for n in feature_names(self.features)], axis=1)
        inner = self.steps.flow_dir("inner", self.features)
        outer = self.steps.flow_dir("outer", self.features)
        return anode_scores(inner, outer, x, columns["mjj"])

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = time.monotonic() - started


def _half(columns: dict[str, np.ndarray], which: int) -> dict[str, np.ndarray]:
    """Every other event of a (shuffled) split: half 0 or half 1."""
    return {name: values[which::2] for name, values in columns.items()}


def _two_classes(task: Task, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels and balancing-free unit weights of one split of the method's classes."""
    one, zero = _CLASSES[task.task["method"]]
    a, b = task.source(one, split), task.source(zero, split)
    if split == "val" and zero != "template":
        b = _half(b, 0)  # the other half is the closure test's, never seen by a classifier
    x = np.concatenate([task.inputs(a, f"{split}1"), task.inputs(b, f"{split}0")])
    y = np.concatenate([np.ones(len(a["mjj"])), np.zeros(len(b["mjj"]))])
    return x, y, np.ones(len(y))


def _reference(task: Task) -> dict[str, np.ndarray]:
    """Held-out events of the method's background model, used by no classifier (for the
    closure test): the template's holdout part, else half of the label-0 validation split."""
    method = task.task["method"]
    if method in ("cathode", "anode"):
        return task.template()["holdout"]
    return _half(task.source(_CLASSES[method][1], "val"), 1)


def _classifier_scores(task: Task):
    from fedhex_hpc.classifiers import ENSEMBLE_CONFIGS, train_classifier_ensemble

    kind = task.task["classifier"]
    settings = task.spec.neural if kind == "neural" else task.spec.trees
    config = parse_section(ENSEMBLE_CONFIGS[kind], settings, kind)
    started = time.monotonic()
    x_train, y_train, w_train = _two_classes(task, "train")
    x_val, y_val, w_val = _two_classes(task, "val")
    task.timed("classifier_data", started)
    started = time.monotonic()
    model = train_classifier_ensemble(
        kind, x_train, y_train, w_train, x_val, y_val, w_val, config, task.seed
    )
    task.timed("classifier_train", started)
    model.save(task.folder.model_dir(task.task_id))
    return lambda columns, part: model.score(task.inputs(columns, part))


def _anode_scores(task: Task):
    started = time.monotonic()
    task.steps.flow("outer", task.features)
    task.steps.flow("inner", task.features)
    task.timed("flows", started)

    def score(columns: dict[str, np.ndarray], part: str) -> np.ndarray:
        scores = task.anode(columns)
        outside = np.isneginf(scores)
        task.outside_domain[part] = int(outside.sum())
        # outside either flow's domain: ranked below every other event (never selected)
        floor = scores[~outside].min() - 1.0 if np.any(~outside) else 0.0
        return np.where(outside, floor, scores)

    return score


def _evaluate(task: Task, score) -> dict[str, Any]:
    from fedhex_hpc.evaluate.anomaly import closure_auc, fpr_at_tpr, sculpting, sic_metrics

    ev = task.spec.evaluation
    started = time.monotonic()
    test = task.source("test", "test")
    scores = score(test, "test")
    labels = test["label"]
    metrics = sic_metrics(scores, labels, fpr_min=ev.fpr_min, min_background=ev.min_background)
    curve = metrics.pop("curve")
    grid = np.linspace(0.0, 1.0, ev.tpr_points + 1)[1:]
    tprs, first = np.unique(curve["tpr"], return_index=True)
    stored = {
        "tpr": grid.tolist(),
        "fpr": fpr_at_tpr(curve, grid).tolist(),
        "n_background": np.interp(grid, tprs, curve["n_background"][first]).tolist(),
    }
    background = labels == 0
    closure = closure_auc(
        score(_reference(task), "reference"),
        scores[background],
        n_bootstrap=ev.bootstrap,
        seed=task.seed,
    )
    mjj = test["mjj"][background]
    sculpt = sculpting(
        mjj, scores[background], mjj, fractions=tuple(ev.keep_fractions), bins=ev.mjj_bins
    )
    task.timed("evaluate", started)
    return {
        **metrics,
        "closure_auc": closure["auc"],
        "closure_low": closure["low"],
        "closure_high": closure["high"],
        "closure_consistent": bool(closure["consistent"]),
        "sculpting": {cut["fraction"]: cut["chi2_ndf"] for cut in sculpt.values()},
        "curve": stored,
    }


def _work(task: Task) -> dict[str, Any]:
    started = time.monotonic()
    prepared = task.steps.prepared()
    task.timed("prepare", started)
    if task.task["method"] in ("cathode", "anode"):
        started = time.monotonic()
        task.template()
        task.timed("template", started)
    score = _anode_scores(task) if task.task["method"] == "anode" else _classifier_scores(task)
    figures = _evaluate(task, score)
    summary = prepared.summary()
    shared = {
        "prepare": step_seconds(task.steps.prepared_dir()),
        "outer_flow": step_seconds(task.steps.flow_dir("outer", task.features)),
        "inner_flow": step_seconds(task.steps.flow_dir("inner", task.features)),
        "template": step_seconds(task.steps.template_dir(task.features)),
    }
    return {
        **{k: task.task[k] for k in ("method", "classifier", "features", "noise", "seed")},
        "n_signal": task.task["n_signal"],
        "s_over_b": summary["s_over_b"],
        "outside_domain": task.outside_domain,
        **figures,
        "timings": task.timings,
        "shared_seconds": shared,
    }


def run_one(path: str | Path, task_id: int, force: bool = False) -> dict[str, Any]:
    """Run task ``task_id`` of the study in ``path`` (skipped when done unless ``force``).

    The group's shared steps (prepare, flows, template) are built by the first task
    that needs them and reused; ``force`` reruns only this task's classifier and
    evaluation. The trained classifier is kept in ``STUDY/models/<task>/``.
    """
    folder = LhcoFolder(path)
    scratch = (folder.model_dir(task_id),)
    return run_task(folder, task_id, lambda: _work(Task(folder, task_id)), force, scratch)
