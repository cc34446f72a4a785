"""One interface for every scheduler: render the job files, submit, report what happened."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Protocol

from fedhex_hpc.errors import FedhexError
from fedhex_hpc.resources import resource_dir
from fedhex_hpc.schedulers.profile import SiteProfile

__all__ = [
    "Scheduler",
    "SchedulerError",
    "SubmitResult",
    "Workload",
    "call",
    "fedhex_command",
    "render",
]


class SchedulerError(FedhexError):
    """A scheduler command failed; the message has its argv, exit code and output."""

    prefix = "scheduler error"


@dataclass
class SubmitResult:
    """What a submission did: job ids, files written, and the commands (for --dry-run)."""

    job_ids: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Workload:
    """What to submit: a folder, its task ids, and the ``fedhex`` arguments that run
    one task (the id comes from the array index) and that collect the results."""

    folder: Path
    task_ids: list[int]
    run_args: list[str]
    collect_args: list[str]


class Scheduler(Protocol):
    """Runs the tasks of a workload, then its collect step."""

    def submit(self, work: Workload, profile: SiteProfile, dry_run: bool) -> SubmitResult:
        """Submit (or with ``dry_run`` only write) the jobs."""
        ...


def render(template: str, out: Path, **values: str) -> Path:
    """Fill the bundled job template ``template`` with ``values`` into ``out``."""
    source = resource_dir("template") / template
    text = Template(source.read_text(encoding="utf-8")).substitute(values)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def fedhex_command(profile: SiteProfile, folder: Path | None = None) -> list[str]:
    """``fedhex`` in the installed environment, or inside the profile's container.

    Args:
        profile: The site profile; its ``container`` section picks the image and runtime.
        folder: The job's folder: podman and docker bind it (and the profile's ``binds``) at
            the same path and start in it. Apptainer binds what the site configures.

    Returns:
        The argv prefix: Apptainer runs ``apptainer exec --nv IMAGE fedhex``; podman and docker
        ``run --rm`` as the calling user with host network and IPC (as podman-hpc does), the
        task's Slurm and PMIx variables (podman), and the GPUs when the profile requests any.
    """
    container = profile.container
    if not container.image:
        return [shutil.which("fedhex") or "fedhex"]
    if container.runtime == "apptainer":
        return ["apptainer", "exec", "--nv", container.image, "fedhex"]
    argv = [container.runtime, "run", "--rm", "--network", "host", "--ipc", "host"]
    argv += ["--user", f"{os.getuid()}:{os.getgid()}"]
    folders = [str(folder)] if folder else []
    for bind in dict.fromkeys([*folders, *container.binds]):
        argv += ["-v", f"{bind}:{bind}"]
    argv += ["-w", str(folder)] if folder else []
    if container.runtime == "podman":
        argv += ["-e", "SLURM_*", "-e", "PMIX_*", "-e", "OMPI_*", "-e", "FEDHEX_*"]
    else:
        argv += ["-e", "FEDHEX_TASK_ID"]
    if profile.slurm.gpus_per_task or profile.condor.request_gpus:
        gpus = ["--device", "nvidia.com/gpu=all"] if container.runtime == "podman" else []
        argv += gpus or ["--gpus", "all"]
    return [*argv, container.image, "fedhex"]


def call(argv: list[str], cwd: Path | None = None) -> str:
    """Run a scheduler command; its stdout, or a :class:`SchedulerError` saying all."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SchedulerError(f"{argv[0]} is not on PATH (needed for: {shlex.join(argv)})") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().replace("\n", " | ")
        raise SchedulerError(f"`{shlex.join(argv)}` exited {done.returncode}: {output}")
    return done.stdout
