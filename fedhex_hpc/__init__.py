"""fedhex-hpc: Masked Autoregressive Flows for particle physics on HPC clusters."""

from __future__ import annotations

import os

# Keras 2 (tf-keras) is what TensorFlow Probability 0.25 targets; it must be chosen
# before TensorFlow is first imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's oneDNN CPU kernels: TensorFlow turns them on by itself only on CPUs with
# AVX-512 VNNI, BF16 or AMX. On an AVX2 CPU (AMD EPYC) they made the training step at
# batch 4,096 x 1.17 faster than TensorFlow's own kernels, and batch 256 no slower
# (see the README's Training throughput); TF_ENABLE_ONEDNN_OPTS=0 turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# Keep TensorFlow's C++ start-up chatter (CPU feature notices, oneDNN banners) out of
# the user's terminal; errors still print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
__all__ = ["__version__"]
