"""What every study folder shares: its marker, task states and results, and the task runner.

Layout common to every kind::

    STUDY/study.json          marker: kind, format version, package version, plan summary
    STUDY/results/ID.json     one task's result; written atomically when the task is done
    STUDY/state/ID.running    host, pid, start time and scheduler ids (while it runs)
    STUDY/state/ID.failed     the last error line
    STUDY/logs/               scheduler logs
    STUDY/submit/             rendered job scripts

Each task writes only its own files, atomically, so any number of tasks run at
once; a kind's ``collect`` merges them. A kind adds its own files (a plan, run
folders) beside these.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

import fedhex_hpc
from fedhex_hpc.environment import JobEnvironment
from fedhex_hpc.errors import ConfigError, Preempted
from fedhex_hpc.io_utils import write_json_atomic
from fedhex_hpc.resources import resolve

__all__ = [
    "MARKER",
    "STATES",
    "StudyFolder",
    "StudyKind",
    "read_spec",
    "resolve_task_id",
    "run_task",
    "status_text",
]

#: The file that makes a folder a study, and says which kind.
MARKER = "study.json"
STATES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class StudyFolder:
    """Paths, marker and task states of one study folder of any kind."""

    path: Path
    kind: str = ""
    format_version: int = 0

    def file(self, *parts: str) -> Path:
        """A path inside the folder."""
        return self.path.joinpath(*parts)

    # --- the marker -----------------------------------------------------------------
    def write_marker(self, record: dict[str, Any]) -> None:
        """Write ``study.json`` (kind, versions and ``record``); written last by a plan."""
        write_json_atomic(
            self.file(MARKER),
            {
                **record,
                "kind": self.kind,
                "format_version": self.format_version,
                "package_version": fedhex_hpc.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )

    def has_marker(self) -> bool:
        """Whether the folder holds a study marker (of any kind)."""
        return self.file(MARKER).is_file()

    def meta(self) -> dict[str, Any]:
        """``study.json``, checked for this kind and format version.

        Raises:
            ConfigError: not a study folder, another kind, or another format version.
        """
        marker = self.file(MARKER)
        if not marker.is_file():
            raise ConfigError(f"{self.path} is not a {self.kind} study folder (no {MARKER})")
        meta = json.loads(marker.read_text(encoding="utf-8"))
        if meta.get("kind") != self.kind:
            raise ConfigError(
                f"{self.path} holds a {meta.get('kind') or 'unknown'} study, "
                f"not a {self.kind} study"
            )
        if meta.get("format_version") != self.format_version:
            raise ConfigError(
                f"{self.path} was made by fedhex-hpc {meta.get('package_version')} with "
                f"{self.kind} format {meta.get('format_version')}; this version reads format "
                f"{self.format_version}"
            )
        return meta

    # --- task states ----------------------------------------------------------------
    def result_file(self, task_id: int) -> Path:
        """Where task ``task_id``'s result is written."""
        return self.file("results", f"{task_id}.json")

    def result(self, task_id: int) -> dict[str, Any] | None:
        """The task's result, if it finished."""
        path = self.result_file(task_id)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def state_file(self, task_id: int, state: str) -> Path:
        """``state/ID.running`` or ``state/ID.failed``."""
        return self.file("state", f"{task_id}.{state}")

    def state(self, task_id: int) -> str:
        """``done``, ``failed``, ``running`` or ``pending``."""
        if self.result_file(task_id).is_file():
            return "done"
        for state in ("failed", "running"):
            if self.state_file(task_id, state).is_file():
                return state
        return "pending"

    def stale(self, task_id: int) -> bool:
        """Whether task ``task_id`` is marked running by a process of this host that is gone
        (killed without its cleanup, e.g. by SIGKILL or a node reboot).

        Marks written on other hosts cannot be checked here and are never stale.
        """
        path = self.state_file(task_id, "running")
        try:
            mark = json.loads(path.read_text(encoding="utf-8"))
            pid = int(mark["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if mark.get("host") != socket.gethostname():
            return False
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except PermissionError:  # it exists, owned by another user
            return False
        return False

    def failure(self, task_id: int) -> str:
        """The last error line of a failed task."""
        path = self.state_file(task_id, "failed")
        return json.loads(path.read_text(encoding="utf-8"))["error"] if path.is_file() else ""

    def ids_by_state(self, task_ids: list[int]) -> dict[str, list[int]]:
        """``task_ids`` grouped by state (every state present, possibly empty)."""
        groups: dict[str, list[int]] = {state: [] for state in STATES}
        for task_id in task_ids:
            groups[self.state(task_id)].append(task_id)
        return groups


class StudyKind(Protocol):
    """One kind of study: what the registry, ``submit``, ``status`` and ``collect`` need.

    A kind's own ``plan`` command creates the folder; everything after that goes
    through this interface.
    """

    name: str
    format_version: int

    def folder(self, path: Path) -> StudyFolder:
        """The kind's folder object for ``path``."""
        ...

    def task_ids(self, path: Path) -> list[int]:
        """Every task id of the plan."""
        ...

    def ready(self, path: Path) -> None:
        """Raise ConfigError naming the command to run when tasks cannot start yet."""
        ...

    def run(self, path: Path, task_id: int, force: bool) -> dict[str, Any]:
        """Run one task (skipped when done unless ``force``); its result."""
        ...

    def collect(self, path: Path) -> str:
        """Merge the results; a printable summary."""
        ...

    def summary_line(self, result: dict[str, Any]) -> str:
        """One line about a finished task, printed by ``fedhex task``."""
        ...


def read_spec(name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    """A study spec (a YAML file or a bundled name) and its top-level mapping.

    Raises:
        ConfigError: no such file or bundled spec, invalid YAML, or not a mapping.
    """
    path = resolve("study", name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of keys")
    return path, raw


def resolve_task_id(task_id: int | None) -> int:
    """The explicit id, else the array index of :class:`~fedhex_hpc.environment.JobEnvironment`.

    Raises:
        ConfigError: neither is there.
    """
    if task_id is not None:
        return task_id
    found = JobEnvironment.current().task_id
    if found is None:
        raise ConfigError(
            "no task id: pass --task ID (or run as a Slurm array element, or set FEDHEX_TASK_ID)"
        )
    return found


def run_task(
    folder: StudyFolder,
    task_id: int,
    work: Callable[[], dict[str, Any]],
    force: bool = False,
    scratch: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """Run one task with the shared bookkeeping and write its result atomically.

    A task whose result exists is returned unchanged unless ``force`` (which also
    deletes the task's ``scratch`` paths, e.g. its run folder). While it runs,
    ``state/ID.running`` names the host, pid and scheduler ids; an exception
    leaves ``state/ID.failed`` with its first line and no result; a preemption
    leaves neither, so the requeued task resumes.
    """
    result_file = folder.result_file(task_id)
    if result_file.exists():
        if not force:
            print(f"task {task_id} is done already (rerun with --force)")
            return folder.result(task_id) or {}
        result_file.unlink()
    running, failed = folder.state_file(task_id, "running"), folder.state_file(task_id, "failed")
    failed.unlink(missing_ok=True)
    job = JobEnvironment.current()
    write_json_atomic(
        running,
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            **job.scheduler_ids(),
        },
    )
    started = time.monotonic()
    try:
        if force:
            for path in scratch:
                shutil.rmtree(path, ignore_errors=True)
        result = {
            "task_id": task_id,
            "done": True,
            **work(),
            "seconds": time.monotonic() - started,
        }
        write_json_atomic(result_file, result)
        return result
    except Preempted:
        raise
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        write_json_atomic(failed, {"error": message, "time": time.time()})
        raise
    finally:
        running.unlink(missing_ok=True)


def _ids(ids: list[int]) -> str:
    return ",".join(map(str, ids)) if len(ids) <= 30 else f"{ids[0]}..{ids[-1]} ({len(ids)})"


def status_text(folder: StudyFolder, name: str, task_ids: list[int]) -> str:
    """Counts and ids per state, with each failed task's last error line and each stale
    running mark (its process is gone: ``retry`` reruns the task)."""
    groups = folder.ids_by_state(task_ids)
    lines = [f"{folder.kind} study {name} in {folder.path}: {len(task_ids)} tasks"]
    for state in STATES:
        ids = groups[state]
        lines.append(f"  {state:<8}{len(ids):>6}" + (f"  ids {_ids(ids)}" if ids else ""))
    lines += [f"  task {i}: {folder.failure(i)}" for i in groups["failed"]]
    lines += [
        f"  task {i}: running mark is stale (its process on this host is gone); retry reruns it"
        for i in groups["running"]
        if folder.stale(i)
    ]
    return "\n".join(lines)
