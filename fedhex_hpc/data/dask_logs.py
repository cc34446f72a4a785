"""Dask's log records during a conversion go to a file in the dataset folder.

When it is imported, distributed gives the loggers ``distributed``,
``distributed.client``, ``distributed.gc``, ``tornado``, ``tornado.application``
and ``bokeh`` one handler writing to stderr, in every process. A worker logs a
failing task with its traceback ("Compute Failed", logger ``distributed.worker``);
the scheduler and nannies log workers that die or restart. During a conversion
these records go to a log file instead: in this process (the client, and the
scheduler and nannies of a local cluster), in forked local workers, which inherit
its handlers, and, through :class:`WorkerLogs`, in spawned or remote workers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import dask
from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["WorkerLogs", "logs_to_file"]

#: The logger hierarchies distributed gives stderr handlers, and the data
#: package's own (its records about failed Dask tasks).
_LOGGERS = ("distributed", "tornado", "bokeh", "fedhex_hpc.data")


def _hierarchy(roots: tuple[str, ...]) -> list[logging.Logger]:
    """``roots`` and every existing logger below them."""
    below = [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.startswith(tuple(f"{r}." for r in roots))
    ]
    return [*map(logging.getLogger, roots), *below]


def _redirect(path: Path) -> Callable[[], None]:
    """Send warnings and errors of the Dask loggers (and of this package's data
    modules) to ``path``; returns what undoes it.

    Every logger of these hierarchies that has handlers of its own or does not
    propagate gets the file instead: distributed gives ``distributed.client``
    and ``distributed.gc`` a stderr handler of their own too.
    """
    handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(dask.config.get("distributed.admin.log-format")))
    saved = []
    for logger in _hierarchy(_LOGGERS):
        if logger.name in _LOGGERS or logger.handlers or not logger.propagate:
            saved.append((logger, logger.handlers[:], logger.propagate))
            logger.handlers = [handler]
            logger.propagate = False

    def restore() -> None:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        handler.close()

    return restore


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[Path]:
    """Within the block, this process's Dask log records go to ``path``, not stderr.

    The file is created by the first record (its folder here, now); a folder left
    empty is removed afterwards.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    restore = _redirect(path)
    try:
        yield path
    finally:
        restore()
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only if nothing was logged


class WorkerLogs(WorkerPlugin):
    """A worker plugin sending each worker's Dask log records to one file."""

    name = "fedhex-dask-logs"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._restore: Callable[[], None] | None = None

    def setup(self, worker: object) -> None:
        """Redirect the worker process's Dask loggers to the file."""
        self._restore = _redirect(self.path)

    def teardown(self, worker: object) -> None:
        """Give the worker process its own handlers back."""
        if self._restore is not None:
            self._restore()
