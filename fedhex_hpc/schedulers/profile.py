"""Site profiles (``hpc/profiles/*.yaml``): scheduler settings shared by every job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedhex_hpc.config import parse_section
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.resources import resolve

__all__ = ["CondorProfile", "ContainerProfile", "SiteProfile", "SlurmProfile", "load_profile"]


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
    """The Apptainer image every task runs in (empty: the installed environment)."""

    image: str = ""


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
        ConfigError: unknown keys, wrong types, or a container image that does not
            exist (checked before anything is submitted).
    """
    if not path:
        return SiteProfile()
    path = resolve("profile", path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        profile = parse_section(SiteProfile, raw, "")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {str(exc).removeprefix('config error: ')}") from None
    image = profile.container.image
    if check_image and image and not Path(image).is_file():
        raise ConfigError(f"{path}: container.image {image} does not exist")
    return profile
