"""Training checkpoints: complete, atomically written folders, the last K kept.

Each checkpoint is ``checkpoints/epoch-EEEEEE[-step-SSSSSS]/`` holding a TF
checkpoint of the flow, the optimizer and the best weights so far, plus
``state.json`` (counters and early-stopping state). The folder is built under a
temporary name and renamed into place, so a kill at any instant leaves either a
complete checkpoint or none; ``state.json`` is written last inside it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fedhex_hpc._tf import tf
from fedhex_hpc.io_utils import atomic_directory, write_json_atomic

__all__ = ["CheckpointStore", "TrainState"]

_NAME = re.compile(r"^epoch-(\d{6})(?:-step-(\d{6}))?$")
STATE_FILE = "state.json"
PREFIX = "ckpt"


@dataclass
class TrainState:
    """Counters that, with the variables, determine the rest of training exactly.

    ``epoch`` counts finished epochs; ``step`` the steps already taken in the next
    one (non-zero only for a checkpoint written on preemption), whose partial
    loss sum is ``loss_sum`` over ``loss_count`` events. ``ensemble`` holds, per slot
    of the kept best epochs, ``[epoch, val_loss]`` of the weights in that slot.
    """

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    best_val: float = float("inf")
    best_epoch: int = 0
    wait: int = 0
    seconds: float = 0.0
    ensemble: list = field(default_factory=list)

    @property
    def name(self) -> str:
        """Folder name of a checkpoint of this state."""
        suffix = f"-step-{self.step:06d}" if self.step else ""
        return f"epoch-{self.epoch:06d}{suffix}"


class CheckpointStore:
    """Writes, lists, prunes and restores checkpoints in one folder."""

    def __init__(self, root: Path, keep: int) -> None:
        self.root = root
        self.keep = keep

    def list(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _NAME.match(path.name)
            if match and (path / STATE_FILE).is_file():
                found.append(((int(match[1]), int(match[2] or 0)), path))
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The newest complete checkpoint, if any."""
        found = self.list()
        return found[-1] if found else None

    def save(self, state: TrainState, objects: dict[str, tf.Module]) -> Path:
        """Write a checkpoint of ``objects`` and ``state``; prune to the last K."""
        path = self.root / state.name
        with atomic_directory(path) as tmp:
            tf.train.Checkpoint(**objects).write(str(tmp / PREFIX))
            write_json_atomic(tmp / STATE_FILE, asdict(state))
        for old in self.list()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    @staticmethod
    def restore(path: Path, objects: dict[str, tf.Module]) -> TrainState:
        """Load ``objects`` from the checkpoint at ``path`` and return its state."""
        tf.train.Checkpoint(**objects).read(str(path / PREFIX)).assert_existing_objects_matched()
        return TrainState(**json.loads((path / STATE_FILE).read_text(encoding="utf-8")))
