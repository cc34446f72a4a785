"""Turn scheduler stop signals into a checkpoint at the current step.

Slurm sends ``--signal=B:USR1@300`` before the time limit and TERM on
preemption or ``scancel``; HTCondor sends TERM. Both ask the trainer to stop
after the step in flight; the process then exits with :data:`PREEMPTED_EXIT_CODE`
so a job script can tell "resume me" from success and failure.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from fedhex_hpc.errors import PREEMPTED_EXIT_CODE

__all__ = ["PREEMPTED_EXIT_CODE", "STOP_SIGNALS", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """Call ``request_stop`` on USR1/TERM while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: object) -> None:
        request_stop()

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
