"""HTCondor: a submit description queueing one job per task id (``queue task_id from``)
and a DAG whose collect node runs after every task."""

from __future__ import annotations

import re
import shlex
import shutil

from fedhex_hpc.schedulers.base import (
    SchedulerError,
    SubmitResult,
    Workload,
    call,
    fedhex_command,
    render,
)
from fedhex_hpc.schedulers.profile import SiteProfile

__all__ = ["CondorScheduler", "condor_arguments", "submitted_clusters"]

# condor_submit (also run by condor_submit_dag) reports each cluster it queued like this.
_SUBMITTED = re.compile(r"\d+ job\(s\) submitted to cluster (\d+)\.")


def condor_arguments(args: list[str]) -> str:
    """HTCondor's new-style argument string: single-quote arguments with spaces."""
    quoted = []
    for arg in args:
        arg = arg.replace('"', '""').replace("'", "''")
        quoted.append(f"'{arg}'" if " " in arg or not arg else arg)
    return " ".join(quoted)


def submitted_clusters(output: str, argv: list[str]) -> list[str]:
    """The cluster ids ``condor_submit`` or ``condor_submit_dag`` reported queuing.

    The ``N job(s) submitted to cluster C.`` line is searched for anywhere in the output:
    both commands print other lines around it (DAGMan's file list and closing rule,
    submit events, warnings).

    Args:
        output: the command's standard output.
        argv: the command that printed it (named in the error).

    Returns:
        The cluster ids, in the order printed, each once.

    Raises:
        SchedulerError: the output reports no submitted cluster.
    """
    clusters = list(dict.fromkeys(_SUBMITTED.findall(output)))
    if not clusters:
        shown = output.strip().replace("\n", " | ") or "(no output)"
        raise SchedulerError(
            f"`{shlex.join(argv)}` reported no 'N job(s) submitted to cluster C.' line; "
            f"its output: {shown}"
        )
    return clusters


class CondorScheduler:
    """Writes ``submit/tasks.sub``, ``submit/collect.sub`` and ``submit/sweep.dag``."""

    def submit(self, work: Workload, profile: SiteProfile, dry_run: bool) -> SubmitResult:
        """Write the files and, unless ``dry_run``, ``condor_submit_dag`` them.

        Each job gets its task id as ``FEDHEX_TASK_ID`` from the queued item.
        """
        sweep = work.folder
        fedhex = fedhex_command(profile, sweep)
        executable = shutil.which(fedhex[0]) or fedhex[0]
        condor = profile.condor
        (sweep / "logs").mkdir(parents=True, exist_ok=True)
        (sweep / "task_ids.txt").write_text("".join(f"{i}\n" for i in work.task_ids))
        extra = "\n".join(f"{k} = {v}" for k, v in condor.extra_commands.items())
        tasks = render(
            "condor_tasks.sub",
            sweep / "submit" / "tasks.sub",
            sweep=str(sweep),
            executable=executable,
            arguments=condor_arguments([*fedhex[1:], *work.run_args]),
            request_cpus=str(condor.request_cpus),
            request_memory=condor.request_memory,
            request_gpus=str(condor.request_gpus),
            extra=extra,
        )
        collect = render(
            "condor_collect.sub",
            sweep / "submit" / "collect.sub",
            sweep=str(sweep),
            executable=executable,
            arguments=condor_arguments([*fedhex[1:], *work.collect_args]),
        )
        dag = sweep / "submit" / "sweep.dag"
        dag.write_text(
            f"JOB tasks {tasks}\nJOB collect {collect}\nPARENT tasks CHILD collect\nRETRY tasks 2\n"
        )
        command = ["condor_submit_dag", "-force", str(dag)]
        result = SubmitResult(files=[tasks, collect, dag], commands=[command])
        if not dry_run:
            result.job_ids = submitted_clusters(call(command, cwd=sweep), command)
        return result
