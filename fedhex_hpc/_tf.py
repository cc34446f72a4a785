"""Quiet, correctly configured TensorFlow and TFP imports for the whole package.

TensorFlow's native start-up writes registration notices for CUDA plugins and, on
machines without a GPU, a failed cuInit straight to file descriptor 2 before its own
logging is configured. They are not errors a user can act on, so the import runs
with that descriptor pointed at /dev/null; Python exceptions raised by the import
still reach the terminal. Set FEDHEX_TF_VERBOSE=1 to see them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

import fedhex_hpc  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

__all__ = ["tf", "tfb", "tfd", "tfp"]


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block."""
    if os.environ.get("FEDHEX_TF_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _native_stderr_silenced(), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tensorflow as tf
    import tensorflow_probability as tfp

    # Device discovery (cuInit) logs its own failure on machines without a GPU.
    tf.config.list_physical_devices()

logging.getLogger("tensorflow").setLevel(logging.ERROR)
tf.get_logger().setLevel(logging.ERROR)

tfb = tfp.bijectors
tfd = tfp.distributions
