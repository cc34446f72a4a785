"""One interface for every scheduler: render the job files, submit, report what happened."""

from __future__ import annotations

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


def fedhex_command(profile: SiteProfile) -> list[str]:
    """``fedhex`` in the installed environment, or inside the profile's container."""
    if profile.container.image:
        return ["apptainer", "exec", "--nv", profile.container.image, "fedhex"]
    return [shutil.which("fedhex") or "fedhex"]


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
