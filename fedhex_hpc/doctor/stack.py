"""``fedhex doctor`` checks of Python and the stack: the interpreter, fedhex-hpc and the
TensorFlow / TensorFlow Probability / tf-keras pins.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import warnings
from pathlib import Path

import fedhex_hpc
from fedhex_hpc.doctor.check import FAIL, OK, WARN, Check
from fedhex_hpc.doctor.common import DIST, _import_tf, _last_line, _pins

__all__ = [
    "check_fedhex",
    "check_python",
    "check_tensorflow",
    "check_tf_keras",
    "check_tfp",
]

MIN_PYTHON = (3, 10)
REINSTALL = "pip install -e . (from the fedhex-hpc checkout)"


def check_python() -> Check:
    """Python is 3.10 or newer.

    Returns:
        ``ok`` with the version and interpreter, or ``FAIL`` when older than 3.10.
    """
    version = ".".join(map(str, sys.version_info[:3]))
    detail = f"{version} ({sys.executable})"
    if sys.version_info < MIN_PYTHON:
        return Check("python", FAIL, detail, "use Python 3.10 or newer (module load python/3.11)")
    return Check("python", OK, detail)


def check_fedhex() -> Check:
    """The imported fedhex-hpc matches its installed distribution metadata.

    Returns:
        ``ok`` with the version; ``warn`` when not installed (the pins cannot be read)
        or when the metadata is stale.
    """
    try:
        installed = importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return Check(
            "fedhex-hpc",
            WARN,
            f"{fedhex_hpc.__version__} imported from source, not installed; pins unknown",
            REINSTALL,
        )
    detail = f"{fedhex_hpc.__version__} ({Path(fedhex_hpc.__file__).parent})"
    if installed != fedhex_hpc.__version__:
        return Check("fedhex-hpc", WARN, f"{detail}; metadata says {installed}", REINSTALL)
    return Check("fedhex-hpc", OK, detail)


def _versus_pin(name: str, version: str, extra: str = "") -> Check:
    """Compare an imported ``version`` of distribution ``name`` with its pin."""
    pin = _pins().get(name)
    if pin is None:
        return Check(name, WARN, f"{version} (pin unknown){extra}", REINSTALL)
    if version != pin:
        return Check(name, WARN, f"{version}, pinned {pin}{extra}", f"pip install '{name}=={pin}'")
    return Check(name, OK, f"{version} (pinned){extra}")


def _import_failure(name: str, exc: Exception) -> Check:
    """A FAIL row for a required module that cannot be imported."""
    pin = _pins().get(name)
    fix = f"pip install '{name}=={pin}'" if pin else REINSTALL
    return Check(name, FAIL, f"import failed: {_last_line(str(exc)) or type(exc).__name__}", fix)


def check_tensorflow() -> Check:
    """TensorFlow imports and matches the version fedhex-hpc pins; the detail says
    whether its oneDNN CPU kernels are on (the package turns them on by default).

    Returns:
        ``ok``, ``warn`` on a version other than the pin, ``FAIL`` when not importable.
    """
    try:
        tf, _ = _import_tf()
    except Exception as exc:
        return _import_failure("tensorflow", exc)
    cuda = "CUDA build" if tf.test.is_built_with_cuda() else "CPU-only build"
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")
    state = "off" if onednn.lower() in ("0", "false") else "on"
    kernels = f"oneDNN CPU kernels {state} (TF_ENABLE_ONEDNN_OPTS={onednn})"
    return _versus_pin("tensorflow", tf.__version__, f"; {cuda}; {kernels}")


def check_tfp() -> Check:
    """TensorFlow Probability imports and matches its pin.

    Returns:
        ``ok``, ``warn`` on a version other than the pin, ``FAIL`` when not importable.
    """
    try:
        _, tfp = _import_tf()
    except Exception as exc:
        return _import_failure("tensorflow-probability", exc)
    return _versus_pin("tensorflow-probability", tfp.__version__)


def check_tf_keras() -> Check:
    """tf-keras is installed and is what ``tf.keras`` resolves to (TF_USE_LEGACY_KERAS=1).

    Returns:
        ``ok``, ``warn`` on a version other than the pin, ``FAIL`` when tf-keras is
        missing or Keras 3 is in effect.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tf_keras
        tf, _ = _import_tf()
    except Exception as exc:
        return _import_failure("tf-keras", exc)
    flag = os.environ.get("TF_USE_LEGACY_KERAS")
    if flag != "1" or not tf.keras.__name__.startswith("tf_keras"):
        return Check(
            "tf-keras",
            FAIL,
            f"TF_USE_LEGACY_KERAS={flag}; tf.keras is {tf.keras.__name__}, but TFP needs "
            "tf-keras (Keras 2)",
            "unset TF_USE_LEGACY_KERAS or export TF_USE_LEGACY_KERAS=1",
        )
    return _versus_pin("tf-keras", tf_keras.__version__, "; TF_USE_LEGACY_KERAS=1 in effect")
