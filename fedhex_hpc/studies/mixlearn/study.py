"""The stages of a mixlearn study: plan, flows and synthetic pools, one classifier per row.

1. :func:`plan_study` checks the dataset and writes ``study.json`` and the plan.
2. :func:`run_flows` trains the signal and the background MAF on the dataset's
   genuine training split of their class (resuming an interrupted run), evaluates
   them, and draws each flow's synthetic pools: a training pool as large as the
   largest synthetic training count of the class, and a separate validation pool.
3. :func:`run_row` trains and tests the classifier of one plan row and writes
   ``results/<row>.json`` atomically: a killed row leaves no result, and a row
   with a result is skipped unless forced.
4. :func:`~fedhex_hpc.studies.mixlearn.collect.collect` merges the results.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TextIO

from fedhex_hpc.config import config_to_dict
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.io_utils import write_text_atomic
from fedhex_hpc.seeding import derive_seed
from fedhex_hpc.studies.base import run_task
from fedhex_hpc.studies.mixlearn.events import (
    class_counts,
    draw_pool,
    feature_names,
    pool_stamp,
    read_pool,
    row_events,
)
from fedhex_hpc.studies.mixlearn.folder import StudyFolder
from fedhex_hpc.studies.mixlearn.plan import plan_table, pool_sizes, signal_fraction
from fedhex_hpc.studies.mixlearn.spec import CLASSES, flow_config, load_spec

__all__ = ["plan_study", "run_flows", "run_row"]


def plan_study(
    spec_path: str | Path,
    out_dir: str | Path,
    small: bool = False,
    dataset: str | Path | None = None,
) -> int:
    """Plan a study into ``out_dir``; planning the same study again is a no-op.

    Args:
        spec_path: The mixlearn spec (YAML).
        out_dir: The study folder to create.
        small: Use the spec's ``small`` variant.
        dataset: A dataset folder replacing the spec's ``dataset``.

    Returns:
        The number of plan rows.

    Raises:
        ConfigError: A bad spec, a grid the dataset cannot fill, or a folder that
            holds another study.
        DataError: The dataset is missing, unfinished, conditional, weighted, or
            lacks signal or background events in a split.
    """
    spec = load_spec(spec_path, small, dataset)
    features = feature_names(spec)
    counts = class_counts(spec)
    table = plan_table(spec, counts)
    record = json.loads(
        json.dumps(
            {
                "name": spec.name,
                "small": small,
                "spec": dataclasses.asdict(spec),
                "flows": {cls: config_to_dict(flow_config(spec, cls)) for cls in CLASSES},
                "features": features,
                "counts": counts,
                "signal_fraction": signal_fraction(counts),
                "pools": pool_sizes(table),
                "rows": len(table),
            }
        )
    )
    folder = StudyFolder(out_dir)
    if folder.has_marker():
        old = folder.meta()
        if any(old.get(k) != record[k] for k in ("spec", "flows", "counts")):
            raise ConfigError(f"{folder.path} already holds another study; plan into a new folder")
        return len(table)
    write_text_atomic(folder.plan_file, table.to_csv(index=False))
    folder.write_marker(record)  # last: marks the study complete
    return len(table)


def _train_flow(folder: StudyFolder, cls: str, stream: TextIO | None) -> dict[str, Any]:
    from fedhex_hpc.studies.steps import ensure_trained, evaluate_run

    run_dir = folder.flow_dir(cls)
    run = ensure_trained(flow_config(folder.spec(), cls), run_dir, stream)
    if not run.metrics_file.is_file():
        evaluate_run(run_dir)
    return run.status()


def run_flows(
    study_dir: str | Path, classes: tuple[str, ...] = CLASSES, stream: TextIO | None = None
) -> str:
    """Train (or resume) the flows of ``classes`` and draw their synthetic pools.

    A finished flow is not retrained; a pool is redrawn only when its flow was
    retrained since it was drawn.

    Args:
        study_dir: The study folder.
        classes: ``signal`` and/or ``background`` (both flows can run as separate jobs).
        stream: Where training progress goes (default stdout).

    Returns:
        One line per flow: epochs, best validation loss and pool sizes.

    Raises:
        ConfigError: Not a study folder, or an unknown class.
    """
    folder = StudyFolder(study_dir)
    meta = folder.meta()
    lines = []
    for cls in classes:
        if cls not in CLASSES:
            raise ConfigError(f"unknown class {cls!r}; mixlearn flows: {', '.join(CLASSES)}")
        status = _train_flow(folder, cls, stream)
        sizes = tuple(meta["pools"][cls])
        stamp = f"{status.get('time')}"
        pool = folder.pool_file(cls)
        if not pool.is_file() or pool_stamp(pool) != stamp:
            seeds = tuple(
                derive_seed(meta["spec"]["seed"], "mixlearn_pools", CLASSES.index(cls), part)
                for part in range(2)
            )
            draw_pool(folder.flow_dir(cls) / "model", sizes, seeds, pool, stamp)
        lines.append(
            f"{cls} flow: {status.get('epochs')} epochs, best val loss "
            f"{status.get('best_val_loss', float('nan')):.4f}; pool {sizes[0]} training + "
            f"{sizes[1]} validation events"
        )
    return "\n".join(lines)


def run_row(study_dir: str | Path, row: int, force: bool = False) -> dict[str, Any]:
    """Train and test the classifier of plan row ``row``; write and return its result.

    Args:
        study_dir: The study folder.
        row: The plan row index (0-based).
        force: Rerun a row that has a result.

    Returns:
        The planned counts, the metrics of the plan, ``best_epoch``,
        ``best_val_loss``, the validation-loss history and the seconds taken.

    Raises:
        ConfigError: Not a study folder, a row outside the plan, or missing pools.
        DataError: The dataset changed since planning.
        TrainingError: The classifier's validation loss was never finite.
    """
    from fedhex_hpc.classifiers.network import classification_metrics, train_classifier

    folder = StudyFolder(study_dir)
    planned = folder.row(row)
    if folder.result(row) is None or force:
        missing = [str(folder.pool_file(c)) for c in CLASSES if not folder.pool_file(c).is_file()]
        if missing:
            raise ConfigError(
                f"no synthetic pool {missing[0]}: run `fedhex mixlearn flows {folder.path}`"
            )

    def work() -> dict[str, Any]:
        spec = folder.spec()
        events = row_events(spec, planned, {c: read_pool(folder.pool_file(c)) for c in CLASSES})
        seed = derive_seed(spec.seed, "mixlearn_classifier", planned["model"])
        classifier = train_classifier(events.training(), events.validation(), spec.classifier, seed)
        x_test, y_test = events.testing()
        return {
            "row": row,
            **planned,
            **classification_metrics(y_test, classifier.predict(x_test)),
            "max_epoch": classifier.epochs,
            "best_epoch": classifier.best_epoch,
            "best_val_loss": classifier.best_val_loss,
            "val_loss": classifier.history["val_loss"],
        }

    return run_task(folder, row, work, force)
