"""The training plan ``training.plan.csv``: one row per classifier, its event counts and results.

Rows are the grid ``models x genuine x synthetic`` (models vary slowest, synthetic
fastest); the row index is the position in that order. "Noise" is the background
class. ``f`` is the signal fraction of the dataset's genuine training split,
``f = n_train_signal / (n_train_signal + n_train_background)``, and
``share(n, f) = floor(n * f + 1/2)`` rounds half up. Columns, in file order:

=================  ==============================================================
``done``           1 when the row's metrics are filled in, else 0
``model``          classifier repetition id: fixes the event subsets drawn and the
                   classifier's initialisation and shuffling
``clf_t_ge_noi``   genuine noise events in the classifier's training set,
                   ``dsize - clf_t_ge_sig``
``clf_t_ge_sig``   genuine signal events in the training set, ``share(dsize, f)``
``clf_t_sy_noi``   synthetic noise events in the training set, ``tsize - clf_t_sy_sig``
``clf_t_sy_sig``   synthetic signal events in the training set, ``share(tsize, f)``
``clf_v_ge_noi``   genuine noise events in the validation set,
                   ``size_clf_v_ge - clf_v_ge_sig``
``clf_v_ge_sig``   genuine signal events in the validation set, ``share(size_clf_v_ge, f)``
``clf_v_sy_noi``   synthetic noise events in the validation set,
                   ``size_clf_v_sy - clf_v_sy_sig``
``clf_v_sy_sig``   synthetic signal events in the validation set, ``share(size_clf_v_sy, f)``
``clfsize``        classifier training events, ``size_clf_t_ge + size_clf_t_sy``
``dsize``          the grid point's genuine training count
``size_clf_t_ge``  ``clf_t_ge_sig + clf_t_ge_noi`` (= ``dsize``)
``size_clf_t_sy``  ``clf_t_sy_sig + clf_t_sy_noi`` (= ``tsize``)
``size_clf_v_ge``  genuine validation events, ``share(V, dsize / (dsize + tsize))`` of
                   the study's validation total ``V``
``size_clf_v_sy``  synthetic validation events, ``V - size_clf_v_ge``
``size_nf_t_noi``  training events of the noise flow (the genuine noise training split)
``size_nf_t_sig``  training events of the signal flow (the genuine signal training split)
``size_nf_v_noi``  validation events of the noise flow (genuine noise validation split)
``size_nf_v_sig``  validation events of the signal flow (genuine signal validation split)
``test_clf_no``    noise events of the genuine test split (the classifier's test set)
``test_clf_sig``   signal events of the genuine test split
``tsize``          the grid point's synthetic training count
``accuracy``       fraction of test events classified right, ``(tsig + tnoise) / total``
``fnoise``         test signal events predicted noise (false noise)
``fsig``           test noise events predicted signal (false signal)
``loss``           mean binary cross-entropy on the test set
``max_epoch``      epochs the classifier actually ran
``tnoise``         test noise events predicted noise
``tsig``           test signal events predicted signal
=================  ==============================================================

A test event is predicted signal when the classifier's output exceeds 0.5.
Genuine training and validation events come from the dataset's train and val
splits (the flows train on all of them); synthetic training and validation events
come from two disjoint pools of each flow, so no synthetic validation event is
ever a training event.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.mixlearn.spec import MixlearnSpec

__all__ = [
    "COUNT_COLUMNS",
    "METRIC_COLUMNS",
    "PLAN_COLUMNS",
    "ClassCounts",
    "plan_table",
    "pool_sizes",
    "share",
    "signal_fraction",
]

#: Events per split and class of the dataset: ``counts[split][cls]``.
ClassCounts = dict[str, dict[str, int]]

COUNT_COLUMNS = [
    "model",
    "clf_t_ge_noi",
    "clf_t_ge_sig",
    "clf_t_sy_noi",
    "clf_t_sy_sig",
    "clf_v_ge_noi",
    "clf_v_ge_sig",
    "clf_v_sy_noi",
    "clf_v_sy_sig",
    "clfsize",
    "dsize",
    "size_clf_t_ge",
    "size_clf_t_sy",
    "size_clf_v_ge",
    "size_clf_v_sy",
    "size_nf_t_noi",
    "size_nf_t_sig",
    "size_nf_v_noi",
    "size_nf_v_sig",
    "test_clf_no",
    "test_clf_sig",
    "tsize",
]
METRIC_COLUMNS = ["accuracy", "fnoise", "fsig", "loss", "max_epoch", "tnoise", "tsig"]
PLAN_COLUMNS = ["done", *COUNT_COLUMNS, *METRIC_COLUMNS]


def share(n: int, fraction: float) -> int:
    """``n * fraction`` rounded to the nearest integer, halves up."""
    return math.floor(n * fraction + 0.5)


def signal_fraction(counts: ClassCounts) -> float:
    """Signal fraction of the genuine training split."""
    train = counts["train"]
    return train["signal"] / (train["signal"] + train["background"])


def _row(model: int, dsize: int, tsize: int, validation: int, counts: ClassCounts) -> dict:
    f = signal_fraction(counts)
    v_ge = share(validation, dsize / (dsize + tsize))
    v_sy = validation - v_ge
    t_ge_sig, t_sy_sig = share(dsize, f), share(tsize, f)
    v_ge_sig, v_sy_sig = share(v_ge, f), share(v_sy, f)
    row = {
        "model": model,
        "clf_t_ge_noi": dsize - t_ge_sig,
        "clf_t_ge_sig": t_ge_sig,
        "clf_t_sy_noi": tsize - t_sy_sig,
        "clf_t_sy_sig": t_sy_sig,
        "clf_v_ge_noi": v_ge - v_ge_sig,
        "clf_v_ge_sig": v_ge_sig,
        "clf_v_sy_noi": v_sy - v_sy_sig,
        "clf_v_sy_sig": v_sy_sig,
        "clfsize": dsize + tsize,
        "dsize": dsize,
        "size_clf_t_ge": dsize,
        "size_clf_t_sy": tsize,
        "size_clf_v_ge": v_ge,
        "size_clf_v_sy": v_sy,
        "size_nf_t_noi": counts["train"]["background"],
        "size_nf_t_sig": counts["train"]["signal"],
        "size_nf_v_noi": counts["val"]["background"],
        "size_nf_v_sig": counts["val"]["signal"],
        "test_clf_no": counts["test"]["background"],
        "test_clf_sig": counts["test"]["signal"],
        "tsize": tsize,
    }
    return {"done": 0, **row, **dict.fromkeys(METRIC_COLUMNS)}


def _check_available(table: pd.DataFrame, counts: ClassCounts, dataset: str) -> None:
    needs = (
        ("clf_t_ge_sig", "train", "signal", "grid.genuine"),
        ("clf_t_ge_noi", "train", "background", "grid.genuine"),
        ("clf_v_ge_sig", "val", "signal", "validation"),
        ("clf_v_ge_noi", "val", "background", "validation"),
    )
    for column, split, cls, setting in needs:
        need, have = int(table[column].max()), counts[split][cls]
        if need > have:
            raise ConfigError(
                f"{setting} needs {need:,} genuine {cls} {split} events per classifier; "
                f"{dataset} has {have:,}"
            )


def plan_table(spec: MixlearnSpec, counts: ClassCounts) -> pd.DataFrame:
    """The plan of ``spec`` on a dataset with ``counts``, metrics empty, nothing done.

    Raises:
        ConfigError: A grid point needs more genuine events than a split holds.
    """
    grid = spec.grid
    rows = [
        _row(model, dsize, tsize, spec.validation, counts)
        for model, dsize, tsize in itertools.product(grid.models, grid.genuine, grid.synthetic)
    ]
    table = pd.DataFrame.from_records(rows, columns=PLAN_COLUMNS)
    _check_available(table, counts, spec.dataset)
    return table


def pool_sizes(table: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """Synthetic events each flow must provide: ``{cls: (training pool, validation pool)}``."""
    return {
        cls: (int(table[f"clf_t_sy_{short}"].max()), int(table[f"clf_v_sy_{short}"].max()))
        for cls, short in (("signal", "sig"), ("background", "noi"))
    }
