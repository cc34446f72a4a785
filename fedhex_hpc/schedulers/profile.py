"""Site profiles (``hpc/profiles/*.yaml``): scheduler settings shared by every job."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedhex_hpc.config import parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.resources import resolve

__all__ = [
    "RUNTIMES",
    "CondorProfile",
    "ContainerProfile",
    "SiteProfile",
    "SlurmProfile",
    "load_profile",
]

# Container runtimes a profile (and jobs/train_lhco.sh, as FEDHEX_CONTAINER) can name.
RUNTIMES = ("apptainer", "podman", "docker")


@dataclass
class SlurmProfile:
    """#SBATCH settings of array and collect jobs."""

    partition: str = ""
    account: str = ""
    time: str = "04:00:00"
    cpus_per_task: int = field(default=2, metadata={"min": 1})
    gpus_per_task: int = field(default=0, metadata={"min": 0})
    memory: str = "8G"
    array_throttle: int = field(default=0, metadata={"min": 0})
    modules: list[str] = field(default_factory=list)
    extra_directives: list[str] = field(default_factory=list)


@dataclass
class CondorProfile:
    """HTCondor submit-description settings."""

    request_cpus: int = field(default=2, metadata={"min": 1})
    request_gpus: int = field(default=0, metadata={"min": 0})
    request_memory: str = "8GB"
    extra_commands: dict[str, Any] = field(default_factory=dict)


@dataclass
class ContainerProfile:
    """The image every task runs in (empty: the installed environment) and its runtime.

    ``image`` is a ``.sif`` file for Apptainer, an image name for podman and docker; ``binds``
    are more folders that podman and docker bind at the same path (the job's folder always is).
    """

    image: str = ""
    runtime: str = "apptainer"
    binds: list[str] = field(default_factory=list)


@dataclass
class SiteProfile:
    """Everything a site profile holds."""

    slurm: SlurmProfile = field(default_factory=SlurmProfile)
    condor: CondorProfile = field(default_factory=CondorProfile)
    container: ContainerProfile = field(default_factory=ContainerProfile)
    dask: dict[str, Any] = field(default_factory=dict)


def load_profile(path: str | Path | None, check_image: bool = True) -> SiteProfile:
    """Read and validate a site profile (defaults without one).

    Raises:
        ConfigError: unknown keys, wrong types, an unknown container runtime, or a
            container runtime or image that does not exist (checked before anything is
            submitted).
    """
    if not path:
        return SiteProfile()
    path = resolve("profile", path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        profile = parse_section(SiteProfile, raw, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {str(exc).removeprefix('config error: ')}") from None
    container = profile.container
    if container.runtime not in RUNTIMES:
        raise ConfigError(
            f"{path}: container.runtime {container.runtime}: expected one of {', '.join(RUNTIMES)}"
        )
    if check_image and container.image:
        _check_image(path, container)
    return profile


def _check_image(path: Path, container: ContainerProfile) -> None:
    """The profile's runtime is on PATH and has its image; else a ConfigError naming the key."""
    runtime, image = container.runtime, container.image
    if runtime == "apptainer":
        if not Path(image).is_file():
            raise ConfigError(f"{path}: container.image {image} does not exist")
        return
    if shutil.which(runtime) is None:
        raise ConfigError(f"{path}: container.runtime {runtime} is not on PATH")
    inspect = subprocess.run(
        [runtime, "image", "inspect", image], capture_output=True, text=True, timeout=120
    )
    if inspect.returncode != 0:
        raise ConfigError(f"{path}: container.image {image} is not an image of {runtime}")
