"""Private helpers shared by the ``fedhex doctor`` checks.

External commands with a timeout, PATH lookups, the pins of the installed
fedhex-hpc, a quiet TensorFlow import and container detection.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "COMMAND_TIMEOUT",
    "DIST",
]

#: Seconds an external command may take (``srun --mpi=list`` can wait on slurmctld).
COMMAND_TIMEOUT = 5.0

DIST = "fedhex-hpc"


def _run(
    command: Sequence[str], timeout: float = COMMAND_TIMEOUT, label: str | None = None
) -> tuple[int, str]:
    """Run ``command`` without stdin; return its exit code and stripped stdout+stderr.

    A missing program, an OS error or a timeout gives exit code -1 and the reason,
    naming the command by ``label`` (default: the command line).
    """
    try:
        proc = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"{label or ' '.join(command)} timed out after {timeout:g} s"
    except OSError as exc:
        return -1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _last_line(text: str) -> str:
    """The last non-empty line of ``text`` (an error's message), or ``text`` itself."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else text


def _which(*programs: str) -> dict[str, str | None]:
    """Locate programs: the name when on PATH, else the path next to the interpreter
    (the bin of a virtualenv that is not activated), else None.
    """
    bin_dir = str(Path(sys.executable).parent)
    return {
        program: program if shutil.which(program) else shutil.which(program, path=bin_dir)
        for program in programs
    }


def _pins() -> dict[str, str]:
    """Exact ``name==version`` pins of the installed fedhex-hpc (no extras), by name."""
    try:
        requirements = importlib.metadata.requires(DIST) or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    pins = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;,]+)", requirement)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[3]
    return pins


def _import_tf() -> tuple[ModuleType, ModuleType]:
    """TensorFlow and TFP, imported quietly with Keras 2 selected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fedhex_hpc._tf import tf, tfp
    return tf, tfp


def _visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow sees (empty when TensorFlow cannot be imported)."""
    try:
        tf, _ = _import_tf()
    except Exception:
        return []
    return [device.name for device in tf.config.list_physical_devices("GPU")]


def _container_kind(env: Mapping[str, str]) -> str | None:
    """``apptainer``, ``singularity``, ``docker`` or ``podman`` when inside one, else None."""
    if env.get("APPTAINER_CONTAINER"):
        return "apptainer"
    if env.get("SINGULARITY_CONTAINER"):
        return "singularity"
    if Path("/.dockerenv").exists():
        return "docker"
    if Path("/run/.containerenv").exists():
        return "podman"
    return None
