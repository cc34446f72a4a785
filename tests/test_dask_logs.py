"""Dask's log records during a conversion go to a file, not to the terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from fedhex_hpc.data.dask_logs import logs_to_file

LOGGERS = ["distributed.worker", "distributed.client", "distributed.gc", "tornado.application"]


def test_records_of_every_dask_logger_go_to_the_file(tmp_path):
    # in a fresh process: under pytest, distributed installs no handlers of its own
    log = tmp_path / "logs" / "convert.log"
    script = f"""
        import logging
        from pathlib import Path

        import distributed

        from fedhex_hpc.data.dask_logs import logs_to_file

        names = {LOGGERS!r}
        before = [logging.getLogger(name).handlers[:] for name in names]
        assert before[1], "distributed.client has a stderr handler of its own"
        with logs_to_file(Path({str(log)!r})):
            for name in names:
                logging.getLogger(name).error("a task failed")
                logging.getLogger(name).info("not kept")
        assert [logging.getLogger(name).handlers for name in names] == before
        logging.getLogger("distributed.client").error("after the conversion")
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert [line.split(" - ", 1)[1] for line in result.stderr.splitlines()] == [
        "distributed.client - ERROR - after the conversion"
    ]
    lines = log.read_text().splitlines()
    assert [line.split(" - ", 1)[1] for line in lines] == [
        f"{name} - ERROR - a task failed" for name in LOGGERS
    ]


def test_no_records_leave_no_folder(tmp_path):
    with logs_to_file(tmp_path / "logs" / "convert.log"):
        logging.getLogger("distributed.worker").info("not kept")
    assert not (tmp_path / "logs").exists()


def test_a_local_cluster_restarts_dead_workers_as_it_started_them(tmp_path):
    """A nanny reads the start method again when it restarts a worker that died: the
    settings hold while the cluster lives, so the new worker is forked too and keeps
    its log records in the file instead of starting with stderr handlers."""
    script = f"""
        from pathlib import Path

        import dask
        import distributed  # noqa: F401  (registers its config)

        from fedhex_hpc.data.cluster import ClusterOptions, _start_method, dask_client

        default = dask.config.get("distributed.worker.multiprocessing-method")
        with dask_client(ClusterOptions(workers=1), Path({str(tmp_path / "convert.log")!r})):
            inside = dask.config.get("distributed.worker.multiprocessing-method")
        after = dask.config.get("distributed.worker.multiprocessing-method")
        assert inside == _start_method() == "fork" != default == after, (inside, after)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
