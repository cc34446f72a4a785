"""``fedhex doctor`` checks for parallel training: GPUs, Horovod, the launchers (srun,
mpirun, horovodrun) and the rank mapping they set up.

Horovod is imported but never initialised (``hvd.init()`` can hang outside a launcher).
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence

from fedhex_hpc.doctor.check import FAIL, OK, WARN, Check
from fedhex_hpc.doctor.common import _last_line, _run, _visible_gpus, _which
from fedhex_hpc.environment import (
    LAUNCHER_VARIABLES,
    MPI_RANK_VARIABLES,
    MPI_SIZE_VARIABLES,
    JobEnvironment,
)

__all__ = [
    "check_gpus",
    "check_horovod",
    "check_launchers",
    "check_ranks",
]

HOROVOD_INSTALL = (
    "HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_GLOO=1 "
    "HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 "
    "pip install --no-cache-dir --no-build-isolation '.[hpc]'"
)
REBUILD_HOROVOD = f"pip uninstall -y horovod; {HOROVOD_INSTALL}"
PMIX_FIX = "launch with `srun --mpi=pmix ...` (or `export SLURM_MPI_TYPE=pmix` in the job script)"


def _nvidia_smi_count() -> int | None:
    """GPUs listed by ``nvidia-smi -L``, or None when it is missing or fails."""
    if not shutil.which("nvidia-smi"):
        return None
    code, out = _run(["nvidia-smi", "-L"])
    if code != 0:
        return None
    return sum(line.startswith("GPU ") for line in out.splitlines())


def check_gpus(env: Mapping[str, str] = os.environ) -> Check:
    """GPUs visible to TensorFlow, compared with ``nvidia-smi`` when it exists.

    Args:
        env: Environment to read ``CUDA_VISIBLE_DEVICES`` from.

    Returns:
        ``ok`` with the GPU count; ``warn`` when TensorFlow sees none (training on CPU).
    """
    gpus = _visible_gpus()
    smi = _nvidia_smi_count()
    notes = [f"nvidia-smi lists {smi}" if smi is not None else "no nvidia-smi"]
    if "CUDA_VISIBLE_DEVICES" in env:
        notes.append(f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']!r}")
    detail = f"TensorFlow sees {len(gpus)} GPU(s); " + ", ".join(notes)
    if gpus:
        return Check("gpus", OK, detail)
    if smi:
        fix = (
            "TensorFlow cannot use the driver's GPUs: install the CUDA build "
            "(pip install '.[cuda]'), run Apptainer with --nv, and check CUDA_VISIBLE_DEVICES"
        )
    else:
        fix = (
            "training will run on CPU; for GPUs request them (sbatch/srun --gpus-per-task=1 "
            "or --gres=gpu:N), use `apptainer exec --nv`, and do not set CUDA_VISIBLE_DEVICES "
            "to '' or -1"
        )
    return Check("gpus", WARN, detail, fix)


def check_horovod() -> Check:
    """Horovod imports and was built with the controllers and GPU operations needed.

    ``hvd.init()`` is never called: outside a launcher it can hang.

    Returns:
        ``ok``; ``warn`` when missing, built without MPI, or without NCCL while GPUs
        are visible; ``FAIL`` when installed but not importable.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import horovod
            import horovod.tensorflow as hvd
    except ModuleNotFoundError as exc:
        if exc.name != "horovod":
            return Check("horovod", FAIL, f"import failed: {exc}", REBUILD_HOROVOD)
        return Check(
            "horovod", WARN, "not installed (single-process training only)", HOROVOD_INSTALL
        )
    except Exception as exc:
        return Check(
            "horovod",
            FAIL,
            f"installed but import failed: {_last_line(str(exc))}",
            f"rebuild against this TensorFlow: {REBUILD_HOROVOD}",
        )
    built = {"MPI": hvd.mpi_built(), "NCCL": hvd.nccl_built(), "Gloo": hvd.gloo_built()}
    detail = f"{horovod.__version__}; " + ", ".join(
        f"{name} {'yes' if value else 'no'}" for name, value in built.items()
    )
    if not built["MPI"]:
        return Check("horovod", WARN, f"{detail}: srun/mpirun cannot launch it", REBUILD_HOROVOD)
    if _visible_gpus() and not built["NCCL"]:
        return Check(
            "horovod",
            WARN,
            f"{detail}: GPU gradients are reduced through MPI on the host",
            f"pip uninstall -y horovod; HOROVOD_GPU_OPERATIONS=NCCL {HOROVOD_INSTALL}",
        )
    return Check("horovod", OK, detail)


def _mpirun_version(mpirun: str) -> str:
    """``Open MPI 4.1.4``-style version of ``mpirun``, or its first output line."""
    _, out = _run([mpirun, "--version"])
    first = out.splitlines()[0] if out else "version unknown"
    match = re.search(r"\(([^)]*)\)\s*(\S+)", first)
    return f"{match[1]} {match[2]}" if match else first


def _srun_mpi_plugins() -> tuple[bool | None, str]:
    """Whether ``srun --mpi=list`` offers pmix (None when it cannot be asked), and why."""
    code, out = _run(["srun", "--mpi=list"])
    if code != 0:
        return None, f"`srun --mpi=list` failed: {_last_line(out)}"
    has_pmix = re.search(r"\bpmix", out) is not None
    return has_pmix, "srun offers pmix" if has_pmix else "srun offers no pmix plugin"


def check_launchers() -> Check:
    """Which of srun, mpirun, horovodrun are on PATH, and whether srun offers PMIx.

    Returns:
        ``ok``; ``warn`` when none is found, or srun offers no pmix or cannot be asked.
    """
    found = _which("srun", "mpirun", "horovodrun")
    parts = [
        location + (f" ({_mpirun_version(location)})" if name == "mpirun" else "")
        for name, location in found.items()
        if location
    ]
    if not parts:
        return Check(
            "launchers",
            WARN,
            "no srun, mpirun or horovodrun on PATH (single process only)",
            "on a cluster: module load openmpi (or run inside the Slurm allocation)",
        )
    missing = [name for name, location in found.items() if not location]
    detail = ", ".join(parts) + (f"; not found: {', '.join(missing)}" if missing else "")
    if not found["srun"]:
        return Check("launchers", OK, detail)
    has_pmix, note = _srun_mpi_plugins()
    detail += f"; {note}"
    if has_pmix is None:
        return Check(
            "launchers", WARN, detail, "run on a node of the cluster (srun needs slurm.conf)"
        )
    if not has_pmix:
        return Check(
            "launchers", WARN, detail, "ask the admins for Slurm's pmix plugin, or use mpirun"
        )
    return Check("launchers", OK, detail)


def _not_launched(env: Mapping[str, str]) -> Check:
    """The rank row for a process no launcher started."""
    if "SLURM_JOB_ID" in env:
        tasks = env.get("SLURM_NTASKS", "1")
        return Check(
            "ranks",
            OK,
            f"in Slurm job {env['SLURM_JOB_ID']} ({tasks} tasks) but outside a job step; "
            "start training with `srun --mpi=pmix`",
        )
    return Check("ranks", OK, "single process (no launcher variables)")


def _disagreement(env: Mapping[str, str], names: Sequence[str]) -> str | None:
    """``A=1, B=0`` when the variables among ``names`` that are set differ, else None."""
    values = {name: int(env[name]) for name in names if name in env}
    if len(set(values.values())) <= 1:
        return None
    return ", ".join(f"{name}={value}" for name, value in values.items())


def check_ranks(env: Mapping[str, str] = os.environ) -> Check:
    """Rank, local rank and world size as set by srun, mpirun or horovodrun.

    Args:
        env: The environment to judge (``os.environ``; tests pass a fake).

    Returns:
        ``ok`` with rank / local rank / size; ``FAIL`` when srun started several tasks
        without PMIx, when the launcher and MPI variables disagree, or when they are
        not integers or out of range.
    """
    launcher = JobEnvironment.launcher_of(env)
    if launcher is None:
        return _not_launched(env)
    rank_var, local_var, size_var = LAUNCHER_VARIABLES[launcher]
    if launcher == "srun" and size_var not in env:
        size_var = "SLURM_NTASKS"
    try:
        rank, local = int(env.get(rank_var, "0")), int(env.get(local_var, "0"))
        size = int(env.get(size_var, "1"))
        conflict = _disagreement(env, list(dict.fromkeys([rank_var, *MPI_RANK_VARIABLES])))
        conflict = conflict or _disagreement(
            env, list(dict.fromkeys([size_var, *MPI_SIZE_VARIABLES]))
        )
    except ValueError as exc:
        return Check("ranks", FAIL, f"a launcher variable is not an integer: {exc}", PMIX_FIX)
    if launcher == "srun" and size > 1 and not {"PMIX_RANK", "PMI_RANK"} & env.keys():
        return Check(
            "ranks",
            FAIL,
            f"srun started {size} tasks ({rank_var}={rank}) without PMIx/PMI variables: "
            "srun was run without --mpi=pmix, so each task would train alone",
            PMIX_FIX,
        )
    if conflict:
        return Check(
            "ranks",
            FAIL,
            f"launcher and MPI disagree: {conflict}",
            "use one launcher: `srun --mpi=pmix python ...` or `mpirun -np N python ...` "
            "inside the allocation, never srun around mpirun",
        )
    if not 0 <= local <= rank < size:
        return Check(
            "ranks",
            FAIL,
            f"{rank_var}={rank}, {local_var}={local} do not fit {size_var}={size}",
            PMIX_FIX,
        )
    return Check("ranks", OK, f"rank {rank} of {size} (local rank {local}) under {launcher}")
