"""The one table of a run's metrics: how each is read from metrics.json, flattened into a
study's result row, printed, and whether summaries and ``sweep best`` may rank by it.

Adding a metric: compute it in :func:`fedhex_hpc.studies.steps.evaluate_run` (as a
``{"value", "stderr"}`` record or a number in metrics.json, or a field of the
run's status), then add a :class:`Metric` row here; every consumer reads this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["METRICS", "Metric", "flatten_metrics", "metric", "report_line"]


@dataclass(frozen=True)
class Metric:
    """One metric of a run.

    Attributes:
        name: Key in metrics.json (or in status.json for ``source="status"``) and
            column of a study's results.
        label: How it is printed.
        better: ``min`` or ``max`` when a smaller or larger value is better (it may
            then rank runs), ``None`` when it does not order runs.
        source: ``metrics`` (a ``{"value", "stderr"}`` record) or ``status`` (a number
            recorded by training).
        fmt: Format of the printed value.
        unit: Printed after the value.
        with_error: Whether the printed value carries its standard error.
    """

    name: str
    label: str
    better: Literal["min", "max"] | None
    source: Literal["metrics", "status"] = "metrics"
    fmt: str = ".4f"
    unit: str = ""
    with_error: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("test_log_likelihood", "test log-likelihood", "max", unit=" nats"),
        Metric("kl", "KL(target||model)", "min"),
        Metric("classifier_auc", "classifier AUC", "min", fmt=".3f", with_error=False),
        Metric("best_val_loss", "best validation loss", "min", source="status"),
        Metric("epochs", "epochs", None, source="status", fmt="d"),
        Metric("best_epoch", "best epoch", None, source="status", fmt="d"),
    )
}


def metric(name: str) -> Metric:
    """The metric called ``name``.

    Raises:
        ConfigError: no such metric; the message lists them.
    """
    from fedhex_hpc.errors import ConfigError

    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; metrics: {', '.join(METRICS)}")
    return METRICS[name]


def flatten_metrics(metrics: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """One flat row: each metric's value (and ``<name>_err`` for records) that the run has."""
    flat: dict[str, Any] = {}
    for m in METRICS.values():
        if m.source == "status":
            flat[m.name] = status.get(m.name)
        elif metrics.get(m.name):
            flat[m.name] = metrics[m.name]["value"]
            flat[f"{m.name}_err"] = metrics[m.name]["stderr"]
    return flat


def report_line(metrics: dict[str, Any]) -> str:
    """The printed summary of a run's metrics.json: value ± error of each record it has."""
    parts = []
    for m in METRICS.values():
        record = metrics.get(m.name)
        if m.source != "metrics" or not record or record.get("value") is None:
            continue
        text = f"{m.label} {record['value']:{m.fmt}}"
        if m.with_error and record.get("stderr") is not None:
            text += f" ± {record['stderr']:{m.fmt}}"
        parts.append(text + m.unit)
    return "; ".join(parts)
