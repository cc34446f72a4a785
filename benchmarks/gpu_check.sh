#!/usr/bin/env bash
# Throughput check of a GPU node (or, with a smaller budget, of a CPU): prints one table of
# the device and driver, training events/s at batch 4096, 16384 and 65536 with and without
# XLA, sampling and log-density events/s, and a 2-rank Horovod run when there are 2+ GPUs.
#
#   benchmarks/gpu_check.sh                 # full check, within 5 minutes on a GPU node
#   GPU_CHECK_BUDGET=cpu benchmarks/gpu_check.sh     # smaller budget for a CPU
#   benchmarks/gpu_check.sh --budget tiny            # the test's budget
#
# PYTHON selects the interpreter (default: python3 on PATH).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
budget="${GPU_CHECK_BUDGET:-gpu}"
if [[ "${1:-}" == "--budget" ]]; then
    budget="${2:?--budget needs one of gpu, cpu, tiny}"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "${PYTHON:-python3}" "$here/gpu_check.py" --budget "$budget"
