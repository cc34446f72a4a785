"""The run directory: one folder per training run and every file it owns.

Layout::

    RUN/run.json           format version of the folder and the package version that made it
    RUN/config.yaml        resolved configuration (reload with `fedhex train RUN/config.yaml`)
    RUN/environment.json   versions, host, command line, scheduler variables
    RUN/status.json        state (running, done, failed, preempted) and last message
    RUN/history.csv        one row per epoch
    RUN/checkpoints/       epoch-NNNNNN/ (last K), best/ (best flow so far)
    RUN/model/             final flow (spec.json + weights), loadable without config
    RUN/ensemble/          flows of the train.keep_best_epochs best epochs, ensemble.json
    RUN/metrics.json       evaluation results
    RUN/plots/             loss curves, densities, marginals
    RUN/tensorboard/       TensorBoard scalars
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import fedhex_hpc
from fedhex_hpc.config import Config, config_to_dict, parse_config
from fedhex_hpc.environment import JobEnvironment
from fedhex_hpc.errors import RunDirError
from fedhex_hpc.io_utils import write_json_atomic, write_text_atomic

__all__ = ["FORMAT_VERSION", "RunDir"]

#: Layout version of a run folder; folders without ``run.json`` are version 1.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RunDir:
    """Paths of one run; construct with :meth:`create` or :meth:`open`."""

    path: Path

    format_file = property(lambda self: self.path / "run.json")
    config_file = property(lambda self: self.path / "config.yaml")
    environment_file = property(lambda self: self.path / "environment.json")
    status_file = property(lambda self: self.path / "status.json")
    history_file = property(lambda self: self.path / "history.csv")
    checkpoints = property(lambda self: self.path / "checkpoints")
    model = property(lambda self: self.path / "model")
    ensemble = property(lambda self: self.path / "ensemble")
    metrics_file = property(lambda self: self.path / "metrics.json")
    plots = property(lambda self: self.path / "plots")
    tensorboard = property(lambda self: self.path / "tensorboard")

    @classmethod
    def create(cls, path: str | Path, config: Config) -> RunDir:
        """Start a new run in ``path`` (which must not hold a run already)."""
        run = cls(Path(path))
        if run.status_file.exists() or run.config_file.exists():
            raise RunDirError(
                f"{run.path} already holds a run; continue it with --resume {run.path} "
                "or choose another --run-dir"
            )
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(
                f"cannot create the run directory {run.path}: {exc.strerror}"
            ) from exc
        if not os.access(run.path, os.W_OK | os.X_OK):
            raise RunDirError(f"run directory {run.path} is not writable by this user")
        write_json_atomic(
            run.format_file,
            {"format_version": FORMAT_VERSION, "package_version": fedhex_hpc.__version__},
        )
        write_text_atomic(run.config_file, yaml.safe_dump(config_to_dict(config), sort_keys=False))
        run.set_status("created")
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run, checking that it is one."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} does not exist")
        if not run.config_file.is_file():
            raise RunDirError(f"{run.path} is not a fedhex run (no config.yaml)")
        made = {"format_version": 1, "package_version": "0.1.0 or older"}
        if run.format_file.is_file():
            made = json.loads(run.format_file.read_text(encoding="utf-8"))
        if made.get("format_version") != FORMAT_VERSION:
            raise RunDirError(
                f"{run.path} was made by fedhex-hpc {made.get('package_version')} with run "
                f"format {made.get('format_version')}; fedhex-hpc {fedhex_hpc.__version__} "
                f"reads format {FORMAT_VERSION}"
            )
        return run

    def config(self) -> Config:
        """The run's resolved configuration."""
        return parse_config(yaml.safe_load(self.config_file.read_text(encoding="utf-8")))

    def status(self) -> dict[str, Any]:
        """Contents of status.json (``{}`` if missing)."""
        if not self.status_file.exists():
            return {}
        return json.loads(self.status_file.read_text(encoding="utf-8"))

    def set_status(self, state: str, **extra: Any) -> None:
        """Record the run's state atomically."""
        write_json_atomic(self.status_file, {"state": state, "time": time.time(), **extra})

    def write_environment(self) -> None:
        """Record versions, host, command line and scheduler variables (appends on resume)."""
        import numpy as np

        from fedhex_hpc._tf import tf, tfp

        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "command": sys.argv,
            "cwd": os.getcwd(),
            "versions": {
                "fedhex_hpc": fedhex_hpc.__version__,
                "tensorflow": tf.__version__,
                "tensorflow_probability": tfp.__version__,
                "numpy": np.__version__,
            },
            "devices": [d.name for d in tf.config.list_physical_devices()],
            "scheduler": JobEnvironment.current().scheduler_variables(),
        }
        history = []
        if self.environment_file.exists():
            history = json.loads(self.environment_file.read_text(encoding="utf-8"))["starts"]
        write_json_atomic(self.environment_file, {"starts": [*history, entry]})
