"""The ``fedhex doctor`` report: every check in order, the table and the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fedhex_hpc.doctor.check import FAIL, OK, WARN, Check
from fedhex_hpc.doctor.parallel import check_gpus, check_horovod, check_launchers, check_ranks
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
    "exit_code",
    "format_table",
    "run_checks",
]


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
    checks += [check_slurm(), *filter(None, [check_slurm_gpus()])]
    checks += [check_htcondor(), check_htcondor2(), check_apptainer()]
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
