"""Running a toys study: train its flows, then draw and fit one block of toys per task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.infer.density import Density, FlowDensity, TargetDensity
from fedhex_hpc.infer.model import LikelihoodModel, ModelSpec, build_model
from fedhex_hpc.infer.toys import HeldOut, draw_toy, toy_record
from fedhex_hpc.studies.base import run_task
from fedhex_hpc.studies.toys.folder import ToysFolder
from fedhex_hpc.studies.toys.spec import GenerateSpec, ToysSpec, flow_config

__all__ = ["run_block", "train_flows"]


def train_flows(path: str | Path) -> str:
    """Train (or finish) every flow of the study in ``path``; one line per flow."""
    from fedhex_hpc.studies.steps import ensure_trained  # TensorFlow: only when training

    folder = ToysFolder(path)
    spec = folder.spec()
    lines = []
    for name in spec.flows:
        run = ensure_trained(flow_config(spec, name), folder.flow_dir(name))
        lines.append(f"flow {name}: {run.path} ({run.status().get('state')})")
    return "\n".join(lines) or f"{path}: the study trains no flows"


def _generator(
    spec: ToysSpec, folder: ToysFolder, features: list[str]
) -> tuple[Density | HeldOut, list[str]]:
    """The toy source and its condition names (none for held-out rows, read as ``features``)."""
    gen: GenerateSpec = spec.generate
    if gen.target:
        density = TargetDensity(gen.target, gen.target_params)
        return density, density.condition_names
    if gen.flow:
        density = FlowDensity.open(folder.path / gen.flow)
        return density, density.condition_names
    from fedhex_hpc.data import read_columns

    columns = read_columns(gen.file, [*features, gen.truth_column], gen.key)
    x = np.stack([columns[n] for n in features], axis=1).astype(np.float64)
    return HeldOut(x, np.asarray(columns[gen.truth_column], np.float64), spec.seed), []


def _condition_row(spec: ToysSpec, names: list[str], truth: float) -> np.ndarray:
    if not names:
        return np.array([truth])
    mapping = spec.generate.conditions or ({names[0]: spec.parameter} if len(names) == 1 else {})
    row = []
    for name in names:
        value = mapping.get(name)
        if value is None:
            raise ConfigError(f"generate.conditions: give a parameter or a number for {name}")
        row.append(truth if value == spec.parameter else float(value))
    return np.array(row)


def _models(spec: ToysSpec, folder: ToysFolder) -> list[tuple[str, LikelihoodModel]]:
    from fedhex_hpc.config import parse_section

    models = []
    for name, raw in spec.fits.items():
        model = build_model(parse_section(ModelSpec, raw, f"fits.{name}"), folder.path)
        model.index(spec.parameter)
        models.append((name, model))
    return models


def run_block(path: str | Path, task_id: int, force: bool = False) -> dict[str, Any]:
    """Draw and fit the toys of task ``task_id``; its result (also written to results/)."""
    folder = ToysFolder(path)
    spec, tasks = folder.spec(), folder.tasks()
    if not 0 <= task_id < len(tasks):
        raise ConfigError(
            f"task {task_id} is outside the plan of {folder.path} (0-{len(tasks) - 1})"
        )
    task = tasks[task_id]

    def work() -> dict[str, Any]:
        models = _models(spec, folder)
        generator, cond_names = _generator(spec, folder, models[0][1].feature_names)
        cond = _condition_row(spec, cond_names, task["truth"])
        if isinstance(generator, HeldOut):  # pass over the rows of the earlier blocks' toys
            for toy in range(task["first_toy"]):
                draw_toy(generator, cond, spec.events, spec.poisson, spec.seed, task["point"], toy)
        toys = []
        for toy in range(task["first_toy"], task["first_toy"] + task["toys"]):
            x = draw_toy(generator, cond, spec.events, spec.poisson, spec.seed, task["point"], toy)
            fits = {
                name: toy_record(model, x, spec.parameter, task["truth"]) for name, model in models
            }
            toys.append({"toy": toy, "fits": fits})
        return {
            "point": task["point"],
            "truth": task["truth"],
            "parameter": spec.parameter,
            "fits": [name for name, _ in models],
            "toys": toys,
        }

    return run_task(folder, task_id, work, force)
