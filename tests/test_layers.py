"""Import rules between the package's layers (see the README's Architecture section)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fedhex_hpc"

#: Top-level module or subpackage -> layer. A module imports only from its own
#: subpackage, from a lower layer, or from the base layer (0).
LAYERS = {
    **dict.fromkeys(
        ("__init__", "_tf", "errors", "io_utils", "seeding", "config", "environment", "resources"),
        0,
    ),
    "flows": 1,
    "targets": 1,
    "data": 2,
    "runs": 2,
    "evaluate": 2,
    "classifiers": 2,
    "train": 3,
    "infer": 3,
    "schedulers": 3,
    "doctor": 3,
    "studies": 4,
    "cli": 5,
}
TENSORFLOW = ("tensorflow", "tensorflow_probability", "tf_keras", "fedhex_hpc._tf")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found.append((parts[0], path))
    return found


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_every_module_has_a_layer():
    assert {top for top, _ in _modules()} <= set(LAYERS)


@pytest.mark.parametrize(("top", "path"), _modules(), ids=lambda v: str(v).split("fedhex_hpc/")[-1])
def test_imports_point_down(top, path):
    layer = LAYERS[top]
    for name in _imports(path):
        if not name.startswith("fedhex_hpc."):
            continue
        other = name.split(".")[1]
        assert other == top or LAYERS[other] == 0 or LAYERS[other] < layer, (
            f"{path.relative_to(PACKAGE)} (layer {layer}) imports {name} (layer {LAYERS[other]})"
        )


@pytest.mark.parametrize("top", ["schedulers", "resources", "environment", "config"])
def test_no_tensorflow_below_the_training_layers(top):
    for scanned_top, path in _modules():
        if scanned_top == top:
            assert not [n for n in _imports(path) if n.startswith(TENSORFLOW)], path


def test_submitting_never_loads_tensorflow():
    """What a login node runs to submit a study must start fast: no TensorFlow import."""
    code = (
        "import sys\n"
        "import fedhex_hpc.schedulers, fedhex_hpc.studies, fedhex_hpc.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tensorflow_probability', 'tf_keras', 'horovod')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
