"""``fedhex doctor``: preflight checks to run on a login or compute node before a job.

Each check is a small function returning one :class:`Check` (a row of the report:
name, status ``ok`` / ``warn`` / ``FAIL``, detail and, for every non-ok row, the fix).
Nothing here may hang: external commands run with a timeout, the HDF5 locking probe
runs in a child process with a timeout, and Horovod is imported but never initialised.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Literal

import fedhex_hpc

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
    "check_tensorflow",
    "check_tf_keras",
    "check_tfp",
    "exit_code",
    "format_table",
    "run_checks",
]

Status = Literal["ok", "warn", "FAIL"]
OK: Status = "ok"
WARN: Status = "warn"
FAIL: Status = "FAIL"

#: Seconds an external command may take (``srun --mpi=list`` can wait on slurmctld).
COMMAND_TIMEOUT = 5.0
#: Seconds the HDF5 locking probe may take (a fresh interpreter importing h5py).
PROBE_TIMEOUT = 20.0
#: Free space below which a directory gets a warning.
LOW_DISK_BYTES = 1 << 30

DIST = "fedhex-hpc"
MIN_PYTHON = (3, 10)
REINSTALL = "pip install -e . (from the fedhex-hpc checkout)"
HOROVOD_INSTALL = (
    "HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_GLOO=1 "
    "HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 "
    "pip install --no-cache-dir --no-build-isolation '.[hpc]'"
)
REBUILD_HOROVOD = f"pip uninstall -y horovod; {HOROVOD_INSTALL}"
PMIX_FIX = "launch with `srun --mpi=pmix ...` (or `export SLURM_MPI_TYPE=pmix` in the job script)"
LOCKING_FIX = "export HDF5_USE_FILE_LOCKING=FALSE"
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")

#: Per launcher: variables holding (rank, local rank, world size) of this process.
LAUNCHER_VARIABLES = {
    "mpirun": ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"),
    "horovodrun": ("HOROVOD_RANK", "HOROVOD_LOCAL_RANK", "HOROVOD_SIZE"),
    "srun": ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_NUM_TASKS"),
}
#: MPI-level variables that must agree with the launcher's when present.
MPI_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMIX_RANK", "PMI_RANK")
MPI_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "HOROVOD_SIZE", "PMIX_SIZE", "PMI_SIZE")

_WRITE_PROBE = """
import os, sys, tempfile, h5py
fd, name = tempfile.mkstemp(prefix=".fedhex-doctor-", suffix=".h5", dir=sys.argv[1])
os.close(fd)
try:
    with h5py.File(name, "w") as fh:
        fh["x"] = [1]
    with h5py.File(name, "r") as fh:
        fh["x"][()]
finally:
    os.unlink(name)
"""
_READ_PROBE = """
import sys, h5py
with h5py.File(sys.argv[1], "r"):
    pass
"""


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the doctor's report.

    Attributes:
        name: Short name of what was checked.
        status: ``ok``, ``warn`` or ``FAIL``.
        detail: What was found, on one line.
        fix: What to do about a non-ok status (empty when ok).
    """

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        """The row as a JSON-ready mapping (for ``fedhex doctor --json``).

        Returns:
            ``{"name", "status", "detail", "fix"}``.
        """
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- helpers


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
    """``apptainer``, ``singularity`` or ``docker`` when running inside one, else None."""
    if env.get("APPTAINER_CONTAINER"):
        return "apptainer"
    if env.get("SINGULARITY_CONTAINER"):
        return "singularity"
    if Path("/.dockerenv").exists():
        return "docker"
    return None


# ------------------------------------------------------------------- Python and stack


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
    """TensorFlow imports and matches the version fedhex-hpc pins.

    Returns:
        ``ok``, ``warn`` on a version other than the pin, ``FAIL`` when not importable.
    """
    try:
        tf, _ = _import_tf()
    except Exception as exc:
        return _import_failure("tensorflow", exc)
    cuda = "CUDA build" if tf.test.is_built_with_cuda() else "CPU-only build"
    return _versus_pin("tensorflow", tf.__version__, f"; {cuda}")


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


# ------------------------------------------------------------------------ GPUs, MPI


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


def _launcher(env: Mapping[str, str]) -> str | None:
    """The launcher that started this process, judged by its variables."""
    if "OMPI_COMM_WORLD_RANK" in env:
        return "mpirun"
    if "HOROVOD_RANK" in env:
        return "horovodrun"
    if "SLURM_STEP_ID" in env:
        return "srun"
    return None


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
    launcher = _launcher(env)
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


# ------------------------------------------------------------------ data and run dirs


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 30):.1f} GiB free"


def _hdf5_file_in(directory: Path) -> Path | None:
    """Some HDF5 file under ``directory`` (a dataset folder's shards), if any."""
    return next((p for p in directory.rglob("*") if p.suffix in HDF5_SUFFIXES), None)


def _probe_locking(script: str, target: Path) -> str | None:
    """Run an h5py probe on ``target`` in a child process; its error, or None."""
    code, out = _run(
        [sys.executable, "-c", script, str(target)],
        timeout=PROBE_TIMEOUT,
        label="the HDF5 locking probe",
    )
    return None if code == 0 else _last_line(out)


def _locking_note() -> str:
    """How HDF5 locking behaved when the probe succeeded."""
    mode = os.environ.get("HDF5_USE_FILE_LOCKING", "")
    if mode.upper() == "FALSE":
        return "HDF5 locking off (HDF5_USE_FILE_LOCKING=FALSE)"
    return "HDF5 locking ok"


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _probe_target(path: Path, directory: Path, writable: bool) -> tuple[str, Path] | None:
    """The probe to run and its target: write in a writable directory, else read an
    HDF5 file that is there; None when neither is possible.
    """
    if writable:
        return _WRITE_PROBE, directory
    target = path if path.suffix in HDF5_SUFFIXES else _hdf5_file_in(directory)
    return None if target is None else (_READ_PROBE, target)


def check_directory(path: Path, name: str = "data") -> Check:
    """A data path (file or directory) or run directory: exists, free space, HDF5 locking.

    HDF5 locking is probed in a child process by writing then reading a temporary file
    in the directory with default locking; a read-only data directory is probed by
    opening an HDF5 file in it read-only. A run directory that does not exist yet is
    judged by the existing parent it would be created in.

    Args:
        path: The path to check.
        name: ``data`` (must exist; may be read-only) or ``run-dir`` (must be writable).

    Returns:
        ``ok``; ``warn`` on low space or when locking cannot be probed; ``FAIL`` when
        the path is missing, a run directory is not writable, or HDF5 locking fails.
    """
    path = Path(path)
    if path.exists():
        directory = path if path.is_dir() else path.parent
        where = str(path)
    elif name == "run-dir":
        directory = _existing_ancestor(path)
        where = f"{path} (to be created in {directory})"
    else:
        return Check(
            name,
            FAIL,
            f"{path} does not exist",
            "give an existing dataset folder or file (`fedhex data convert` makes one)",
        )
    writable = os.access(directory, os.W_OK | os.X_OK)
    free = shutil.disk_usage(directory).free
    found = f"{where}: {'writable' if writable else 'read-only'}, {_gib(free)}"
    if name == "run-dir" and not writable:
        return Check(name, FAIL, found, "choose a run directory on a writable file system")
    probe = _probe_target(path, directory, writable)
    if probe is None:
        return Check(
            name,
            WARN,
            f"{found}, no HDF5 file to probe locking on",
            f"if reading fails with 'unable to lock file': {LOCKING_FIX}",
        )
    error = _probe_locking(*probe)
    if error is not None and ("lock" in error.lower() or "timed out" in error):
        return Check(name, FAIL, f"{found}, HDF5 file locking fails: {error}", LOCKING_FIX)
    if error is not None:
        return Check(
            name,
            FAIL,
            f"{found}, HDF5 probe failed: {error}",
            "check that the file system is mounted and writable",
        )
    if free < LOW_DISK_BYTES:
        return Check(
            name,
            WARN,
            f"{found}, {_locking_note()}",
            f"free space on {directory} or choose another directory",
        )
    return Check(name, OK, f"{found}, {_locking_note()}")


# ------------------------------------------------------------- schedulers, container


def _tools_check(name: str, programs: Sequence[str], fix: str) -> Check:
    """``ok`` when every program is on PATH, else ``warn`` naming the missing ones."""
    found = _which(*programs)
    missing = [program for program, location in found.items() if not location]
    present = ", ".join(location for location in found.values() if location)
    if not missing:
        return Check(name, OK, present)
    detail = f"not found: {', '.join(missing)}" + (f"; found: {present}" if present else "")
    return Check(name, WARN, detail, fix)


def check_slurm() -> Check:
    """Slurm's sbatch, squeue and scontrol are on PATH.

    Returns:
        ``ok``, or ``warn`` naming the missing commands.
    """
    return _tools_check(
        "slurm",
        ("sbatch", "squeue", "scontrol"),
        "submit from a Slurm login node (or `module load slurm`); not needed with HTCondor",
    )


def check_htcondor() -> Check:
    """HTCondor's condor_submit and condor_q are on PATH.

    Returns:
        ``ok``, or ``warn`` naming the missing commands.
    """
    return _tools_check(
        "htcondor",
        ("condor_submit", "condor_q"),
        "submit from an HTCondor access point; not needed with Slurm",
    )


def check_htcondor2() -> Check:
    """The ``htcondor2`` Python bindings import.

    Returns:
        ``ok`` with the version, or ``warn`` when they cannot be imported.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import htcondor2
    except Exception as exc:
        return Check(
            "htcondor2",
            WARN,
            f"not importable ({_last_line(str(exc))})",
            "pip install htcondor (provides htcondor2; needed only for HTCondor submission)",
        )
    return Check("htcondor2", OK, getattr(htcondor2, "__version__", "importable"))


def check_apptainer(env: Mapping[str, str] = os.environ) -> Check:
    """``apptainer`` (or ``singularity``) is on PATH, with its version.

    Args:
        env: Environment used to tell whether we already run inside a container.

    Returns:
        ``ok`` with the version (or when inside a container); ``warn`` when missing.
    """
    for program in ("apptainer", "singularity"):
        if shutil.which(program):
            code, out = _run([program, "--version"])
            version = _last_line(out) if code == 0 else f"version unknown ({_last_line(out)})"
            return Check("apptainer", OK, f"{program}: {version}")
    inside = _container_kind(env)
    if inside:
        return Check("apptainer", OK, f"not on PATH (running inside {inside})")
    return Check(
        "apptainer",
        WARN,
        "neither apptainer nor singularity on PATH",
        "module load apptainer (needed only to run the container image)",
    )


def check_image(image: Path) -> Check:
    """A container image exists and is readable.

    Args:
        image: Path of the ``.sif`` image.

    Returns:
        ``ok`` with its size, ``FAIL`` when missing or unreadable.
    """
    image = Path(image)
    if not image.is_file():
        return Check(
            "image",
            FAIL,
            f"{image} does not exist or is not a file",
            "give the path of an existing .sif image",
        )
    if not os.access(image, os.R_OK):
        return Check("image", FAIL, f"{image} is not readable", f"chmod a+r {image}")
    return Check("image", OK, f"{image} ({image.stat().st_size / (1 << 20):.0f} MiB)")


def check_container(env: Mapping[str, str] = os.environ) -> Check:
    """Whether this process runs inside a container (Apptainer, Singularity, Docker).

    Args:
        env: Environment holding ``APPTAINER_CONTAINER`` / ``SINGULARITY_CONTAINER``.

    Returns:
        Always ``ok``; the detail says where we run.
    """
    kind = _container_kind(env)
    if kind is None:
        return Check("container", OK, "not inside a container")
    image = env.get("APPTAINER_CONTAINER") or env.get("SINGULARITY_CONTAINER")
    return Check("container", OK, f"inside {kind}" + (f" ({image})" if image else ""))


# ------------------------------------------------------------------------- the report


def run_checks(
    data_paths: Sequence[Path] = (),
    run_dir: Path | None = None,
    image: Path | None = None,
) -> list[Check]:
    """Run every check, in report order.

    Args:
        data_paths: Data files or directories to check (existence, HDF5 locking, space).
        run_dir: Run directory to check (writable, HDF5 locking, space).
        image: Container image to check (exists, readable).

    Returns:
        One :class:`Check` per row; data, run-dir and image rows only when given.
    """
    checks = [
        check_python(),
        check_fedhex(),
        check_tensorflow(),
        check_tfp(),
        check_tf_keras(),
        check_gpus(),
        check_horovod(),
        check_launchers(),
        check_ranks(),
    ]
    checks += [check_directory(Path(path), "data") for path in data_paths]
    if run_dir is not None:
        checks.append(check_directory(Path(run_dir), "run-dir"))
    checks += [check_slurm(), check_htcondor(), check_htcondor2(), check_apptainer()]
    if image is not None:
        checks.append(check_image(Path(image)))
    checks.append(check_container())
    return checks


def format_table(checks: Sequence[Check]) -> str:
    """The report: an aligned table, then one ``fix (<name>): ...`` line per non-ok row.

    Args:
        checks: Rows from :func:`run_checks`.

    Returns:
        The text to print (no trailing newline).
    """
    rows = [("check", "status", "detail")]
    rows += [(c.name, c.status, " ".join(c.detail.split())) for c in checks]
    name_width = max(len(row[0]) for row in rows)
    status_width = max(len(row[1]) for row in rows)
    lines = [f"{n:<{name_width}}  {s:<{status_width}}  {d}".rstrip() for n, s, d in rows]
    fixes = [f"fix ({c.name}): {c.fix}" for c in checks if c.status != OK]
    counts = {status: sum(c.status == status for c in checks) for status in (OK, WARN, FAIL)}
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    return "\n".join([*lines, *(["", *fixes] if fixes else []), "", summary])


def exit_code(checks: Sequence[Check]) -> int:
    """The process exit code for a report.

    Args:
        checks: Rows from :func:`run_checks`.

    Returns:
        1 if any row FAILed, else 0.
    """
    return int(any(c.status == FAIL for c in checks))
