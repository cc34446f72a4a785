"""Score every row of a dataset with one task's trained model, split over MPI ranks.

A classifier task scores with the classifier it kept in ``STUDY/models/<task>/``, on
inputs built exactly as the task built those of its test set (its feature set and
seeded noise columns, over the split's rows in shard order), so the task's own test
split gets the scores the task evaluated. An ANODE task scores with
log p_in - log p_out of its group's inner and outer flows (:data:`OUTSIDE_SCORE` for
rows outside either flow's domain, counted in the manifest's ``options["counts"]``).

The output is a dataset folder: the input's columns plus ``score``, the rows of each
class in their input order. Under ``srun -n N`` or ``mpirun -np N`` the rows are cut
into fixed blocks shared out over the ranks (:mod:`fedhex_hpc.studies.steps.ranks`):
each rank writes its own shards, rank 0 the manifest, and the rows read back are
the ones one process writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedhex_hpc.data.manifest import Manifest
from fedhex_hpc.data.shards import open_shard
from fedhex_hpc.data.sources.base import CLASS_NAMES, Column
from fedhex_hpc.data.sources.lhco import feature_names
from fedhex_hpc.errors import ConfigError, DataError, listing
from fedhex_hpc.studies.lhco_anomaly.folder import LhcoFolder
from fedhex_hpc.studies.lhco_anomaly.task import Task
from fedhex_hpc.studies.steps.ranks import Comm, write_blocks

__all__ = ["OUTSIDE_SCORE", "SCORE_BLOCK", "score_dataset"]

#: Rows per block a rank scores at once (the blocks do not depend on the ranks).
SCORE_BLOCK = 65536
#: ANODE's score of a row outside either flow's domain: the lowest float32, so it
#: ranks last and the manifest's statistics stay finite.
OUTSIDE_SCORE = float(np.finfo(np.float32).min)


def _task(study: Path, task_id: int) -> Task:
    """The task, checked to exist and to be done."""
    folder = LhcoFolder(study)
    n_tasks = len(folder.tasks())
    if not 0 <= task_id < n_tasks:
        raise ConfigError(f"{study}: no task {task_id}; tasks 0..{n_tasks - 1}")
    state = folder.state(task_id)
    if state != "done":
        raise ConfigError(
            f"{study}: task {task_id} is {state}, not done; run `fedhex task {study} "
            f"--task {task_id}` first"
        )
    return Task(folder, task_id)


def _rows(dataset: Path, manifest: Manifest, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Every row of ``split`` in shard order, and its class code."""
    shards = manifest.shards_of(split)
    codes = {cls: code for code, cls in CLASS_NAMES.items()}
    values, labels = [np.zeros((0, len(manifest.columns)), np.float32)], [np.zeros(0, np.int64)]
    for shard in shards:
        with open_shard(dataset / shard.path) as fh:
            values.append(fh["data"][()])
        labels.append(np.full(len(values[-1]), codes[shard.cls], np.int64))
    return np.concatenate(values), np.concatenate(labels)


def score_dataset(
    study: str | Path,
    task_id: int,
    dataset: str | Path,
    out: str | Path,
    split: str = "test",
    comm: Comm | None = None,
    block_rows: int | None = None,
) -> Manifest:
    """Write the rows of ``dataset``'s ``split`` with task ``task_id``'s scores to ``out``.

    Args:
        study: The study folder.
        task_id: A done task of it.
        dataset: A dataset folder (store format) holding the columns the task's model
            reads (its feature set; ``mjj`` too for ANODE).
        out: The dataset folder to write (an existing one is replaced).
        split: The split of ``dataset`` to score; written as the same split.
        comm: The ranks (default: every rank of the launch).
        block_rows: Rows scored at once (default :data:`SCORE_BLOCK`); a rank gets
            whole blocks.

    Returns:
        The manifest written (on every rank).

    Raises:
        ConfigError: No such task, it is not done, or ``block_rows`` is not positive.
        DataError: ``dataset`` is not a complete dataset, has no rows in ``split``
            or lacks a needed column; the task kept no classifier.
    """
    study, dataset = Path(study), Path(dataset)
    block_rows = SCORE_BLOCK if block_rows is None else block_rows
    if block_rows < 1:
        raise ConfigError(f"block_rows must be a positive number of rows, got {block_rows}")
    task = _task(study, task_id)
    manifest = Manifest.read(dataset)
    if not manifest.splits.get(split) or not sum(manifest.splits[split].values()):
        listed = [s for s, counts in manifest.splits.items() if sum(counts.values())]
        raise DataError(f"{dataset}: no rows in split {split!r}; splits: {listing(listed)}")
    stored = manifest.stored_columns
    anode = task.task["method"] == "anode"
    needed = [*feature_names(task.features), *(["mjj"] if anode else [])]
    missing = [name for name in needed if name not in stored]
    if missing:
        raise DataError(
            f"{dataset}: no column {listing(missing)}, which task {task_id} "
            f"({task.task['method']}, {task.features} features) needs; columns: {listing(stored)}"
        )
    if "score" in stored:
        raise DataError(f"{dataset}: has a column 'score' already; score a dataset without one")
    values, labels = _rows(dataset, manifest, split)
    columns = {name: values[:, j] for j, name in enumerate(stored)}
    if anode:
        model, inputs = None, None
    else:
        from fedhex_hpc.classifiers import ScoreModel

        model = ScoreModel.load(task.folder.model_dir(task_id))
        inputs = task.inputs(columns, "test")  # the noise of the task's test inputs
    # fixed blocks within each class, in input order: the same for any number of ranks
    blocks = [
        (int(code), rows[start : start + block_rows])
        for code in CLASS_NAMES
        for rows in [np.flatnonzero(labels == code)]
        for start in range(0, len(rows), block_rows)
    ]

    def make_block(block: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        rows = blocks[block][1]
        chosen = {name: column[rows] for name, column in columns.items()}
        if model is None:
            scores = task.anode(chosen)
            outside = np.isneginf(scores)
            scores = np.where(outside, OUTSIDE_SCORE, scores)
            return {**chosen, "score": scores}, {"outside_domain": int(outside.sum())}
        return {**chosen, "score": model.score(inputs[rows])}, {}

    out_columns = [Column(**c) for c in manifest.columns] + [Column("score", "feature")]
    options = {"study": str(study), "task": task_id, "dataset": str(dataset), "split": split}
    return write_blocks(
        out,
        len(blocks),
        make_block,
        out_columns,
        f"lhco_score/{task.task['method']}",
        options,
        comm,
        split=split,
        cls=[CLASS_NAMES[code] for code, _ in blocks],
    )
