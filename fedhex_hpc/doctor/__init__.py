"""``fedhex doctor``: preflight checks to run on a login or compute node before a job.

Each check is a small function returning one :class:`Check` (a row of the report:
name, status ``ok`` / ``warn`` / ``FAIL``, detail and, for every non-ok row, the fix).
Nothing here may hang: external commands run with a timeout, the HDF5 locking probe
runs in a child process with a timeout, and Horovod is imported but never initialised.

Modules: :mod:`~fedhex_hpc.doctor.check` (the :class:`Check` row),
:mod:`~fedhex_hpc.doctor.common` (shared helpers), :mod:`~fedhex_hpc.doctor.stack`
(Python, fedhex-hpc, TensorFlow pins), :mod:`~fedhex_hpc.doctor.parallel` (GPUs,
Horovod, launchers, ranks), :mod:`~fedhex_hpc.doctor.storage` (data and run
directories), :mod:`~fedhex_hpc.doctor.tools` (schedulers, Apptainer, container) and
:mod:`~fedhex_hpc.doctor.report` (the report).
"""

from __future__ import annotations

from fedhex_hpc.doctor.check import Check
from fedhex_hpc.doctor.parallel import check_gpus, check_horovod, check_launchers, check_ranks
from fedhex_hpc.doctor.report import exit_code, format_table, run_checks
from fedhex_hpc.doctor.stack import (
    check_fedhex,
    check_python,
    check_tensorflow,
    check_tf_keras,
    check_tfp,
)
from fedhex_hpc.doctor.storage import check_directory
from fedhex_hpc.doctor.tools import (
    check_apptainer,
    check_container,
    check_htcondor,
    check_htcondor2,
    check_image,
    check_slurm,
    check_slurm_gpus,
)

__all__ = [
    "Check",
    "check_apptainer",
    "check_container",
    "check_directory",
    "check_fedhex",
    "check_gpus",
    "check_horovod",
    "check_htcondor",
    "check_htcondor2",
    "check_image",
    "check_launchers",
    "check_python",
    "check_ranks",
    "check_slurm",
    "check_slurm_gpus",
    "check_tensorflow",
    "check_tf_keras",
    "check_tfp",
    "exit_code",
    "format_table",
    "run_checks",
]
