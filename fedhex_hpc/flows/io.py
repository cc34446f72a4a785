"""Save and load a trained flow as an open-format folder: spec.json + TF checkpoint.

The folder is self-describing: loading it needs neither the training config nor
the training data, only this package. ``spec.json`` holds the spec's fields plus
``format_version`` and ``package_version`` (the fedhex-hpc that wrote it); a file
without ``format_version`` predates the field and is format 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import fedhex_hpc
from fedhex_hpc._tf import tf
from fedhex_hpc.errors import RunDirError
from fedhex_hpc.flows.maf import FlowModel, FlowSpec
from fedhex_hpc.io_utils import atomic_directory, write_json_atomic

__all__ = ["FORMAT_VERSION", "load_flow", "read_spec", "save_flow", "write_spec"]

SPEC_FILE = "spec.json"
WEIGHTS_PREFIX = "weights"
#: Format of saved flows this version writes, and the newest it reads.
FORMAT_VERSION = 1


def write_spec(spec: FlowSpec, path: Path) -> Path:
    """Write ``spec`` with its format and package version as JSON to ``path`` atomically."""
    meta = {"format_version": FORMAT_VERSION, "package_version": fedhex_hpc.__version__}
    return write_json_atomic(path, {**meta, **spec.to_dict()})


def save_flow(model: FlowModel, path: str | Path) -> Path:
    """Write ``model`` to the folder ``path`` atomically (replacing an older one)."""
    path = Path(path)
    with atomic_directory(path) as tmp:
        write_spec(model.spec, tmp / SPEC_FILE)
        tf.train.Checkpoint(flow=model).write(str(tmp / WEIGHTS_PREFIX))
    return path


def read_spec(path: str | Path) -> FlowSpec:
    """The spec of the flow saved in the folder ``path``.

    Raises:
        RunDirError: ``path`` is not a saved flow, or its spec.json is invalid, of
            a newer format or has a field this version does not know; the message
            names the file, the field and the versions that wrote and read it.
    """
    spec_file = Path(path) / SPEC_FILE
    if not spec_file.is_file():
        raise RunDirError(f"{path} is not a saved flow (no {SPEC_FILE})")
    try:
        raw = json.loads(spec_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{spec_file} is not valid JSON ({exc})") from None
    version = raw.pop("format_version", 1)
    writer = raw.pop("package_version", "(version not recorded)")
    versions = f"written by fedhex-hpc {writer}, read by fedhex-hpc {fedhex_hpc.__version__}"
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise RunDirError(
            f"{spec_file}: format_version {version} is not readable, this version reads "
            f"flow format 1 to {FORMAT_VERSION} ({versions})"
        )
    unknown = FlowSpec.unknown_fields(raw)
    if unknown:
        raise RunDirError(
            f"{spec_file}: unknown field {unknown[0]!r} in flow format {version} ({versions})"
        )
    return FlowSpec.from_dict(raw)


def load_flow(path: str | Path) -> FlowModel:
    """Load a flow saved by :func:`save_flow`.

    Raises:
        RunDirError: see :func:`read_spec`.
    """
    path = Path(path)
    model = FlowModel(read_spec(path))
    tf.train.Checkpoint(flow=model).read(
        str(path / WEIGHTS_PREFIX)
    ).assert_existing_objects_matched()
    return model
