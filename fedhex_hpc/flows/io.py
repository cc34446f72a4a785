"""Save and load a trained flow as an open-format folder: spec.json + TF checkpoint.

The folder is self-describing: loading it needs neither the training config nor
the training data, only this package.
"""

from __future__ import annotations

import json
from pathlib import Path

from fedhex_hpc._tf import tf
from fedhex_hpc.errors import RunDirError
from fedhex_hpc.flows.maf import FlowModel, FlowSpec
from fedhex_hpc.io_utils import atomic_directory, write_json_atomic

__all__ = ["load_flow", "save_flow"]

SPEC_FILE = "spec.json"
WEIGHTS_PREFIX = "weights"


def save_flow(model: FlowModel, path: str | Path) -> Path:
    """Write ``model`` to the folder ``path`` atomically (replacing an older one)."""
    path = Path(path)
    with atomic_directory(path) as tmp:
        write_json_atomic(tmp / SPEC_FILE, model.spec.to_dict())
        tf.train.Checkpoint(flow=model).write(str(tmp / WEIGHTS_PREFIX))
    return path


def load_flow(path: str | Path) -> FlowModel:
    """Load a flow saved by :func:`save_flow`."""
    path = Path(path)
    spec_file = path / SPEC_FILE
    if not spec_file.is_file():
        raise RunDirError(f"{path} is not a saved flow (no {SPEC_FILE})")
    model = FlowModel(FlowSpec.from_dict(json.loads(spec_file.read_text())))
    tf.train.Checkpoint(flow=model).read(
        str(path / WEIGHTS_PREFIX)
    ).assert_existing_objects_matched()
    return model
