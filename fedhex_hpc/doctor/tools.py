"""``fedhex doctor`` checks of schedulers and containers: Slurm, HTCondor, the htcondor2
bindings, Apptainer, a container image and whether we run inside a container.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from fedhex_hpc.doctor.check import FAIL, OK, WARN, Check
from fedhex_hpc.doctor.common import _container_kind, _last_line, _run, _which

__all__ = [
    "check_apptainer",
    "check_container",
    "check_htcondor",
    "check_htcondor2",
    "check_image",
    "check_slurm",
    "check_slurm_gpus",
]


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


def check_slurm_gpus() -> Check | None:
    """Whether the Slurm cluster offers GPUs as generic resources (``sinfo -o %G``).

    ``jobs/train_lhco.sh`` asks for ``--gpus-per-task=1``, which sbatch refuses with
    "Invalid generic resource" on a cluster without GPUs.

    Returns:
        None without ``sinfo``; ``ok`` when a partition lists GPUs; ``warn`` with the
        override when none does, or when the controller cannot be asked.
    """
    if not _which("sinfo")["sinfo"]:
        return None
    code, out = _run(["sinfo", "--noheader", "--format=%P %G"])
    if code != 0:
        return Check(
            "slurm gpus", WARN, f"sinfo failed: {_last_line(out)}", "run on a cluster node"
        )
    gres = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines() if line}
    with_gpus = [p for p, g in gres.items() if "gpu" in g]
    if with_gpus:
        return Check("slurm gpus", OK, f"partitions with GPUs: {', '.join(with_gpus)}")
    return Check(
        "slurm gpus",
        WARN,
        f"no partition offers GPUs ({', '.join(f'{p}: {g}' for p, g in gres.items())}); "
        "sbatch refuses the job scripts' --gpus-per-task=1",
        "submit CPU-only: `sbatch --gpus-per-task=0 jobs/train_lhco.sh` "
        "(and leave slurm.gpus_per_task at 0 in the site profile)",
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
    """Whether this process runs inside a container (Apptainer, Singularity, Docker, podman).

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
