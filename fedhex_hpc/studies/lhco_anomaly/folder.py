"""The anomaly-detection study folder: the resolved spec, the task list and the group steps.

Layout::

    STUDY/study.json                 kind "lhco_anomaly": resolved spec, groups and tasks
    STUDY/inputs/                    SYNTHETIC input files (when the spec names none)
    STUDY/shared/<step>-<key>/       one group's prepared data, flows and template, each
                                     keyed by a hash of everything it was made from
                                     (the spec's shared_dir may name another folder)
    STUDY/results/<task>.json        one task: figures, curves on the TPR grid, timings
    STUDY/models/<task>/             its trained classifier (fedhex_hpc.classifiers.ScoreModel)
    STUDY/results.csv, summary.md, summary.csv, plots/   (collect)

A group is one (seed, n_signal): its data preparation, outer and inner flows and
template are built once, by the first task of the group that needs them, and reused
by every other task of the group.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fedhex_hpc.config import parse_section
from fedhex_hpc.data.sources.lhco import EXTRA_FILE_NAME, FEATURES_FILE_NAME
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.base import StudyFolder
from fedhex_hpc.studies.lhco_anomaly.spec import CLASSIFIER_FREE, LhcoSpec, load_spec

__all__ = ["FORMAT_VERSION", "LhcoFolder", "plan_study", "plan_tasks"]

FORMAT_VERSION = 1

#: Share of the real extra SR-background file's size to the R&D file's (612k / 1.1M).
_EXTRA_SHARE = 612_000 / 1_100_000


class LhcoFolder(StudyFolder):
    """Paths and records of one anomaly-detection study folder."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path), "lhco_anomaly", FORMAT_VERSION)

    def spec(self) -> LhcoSpec:
        """The resolved spec the study was planned with."""
        return parse_section(LhcoSpec, self.meta()["spec"], "")

    def tasks(self) -> list[dict[str, Any]]:
        """Every task: method, classifier, feature set, noise, seed, n_signal, group."""
        return list(self.meta()["tasks"])

    def groups(self) -> list[dict[str, int]]:
        """Every (seed, n_signal) group."""
        return list(self.meta()["groups"])

    def model_dir(self, task_id: int) -> Path:
        """Where task ``task_id`` keeps its trained classifier."""
        return self.file("models", str(task_id))

    def shared(self) -> Path:
        """Where the groups' shared steps live (``shared_dir``, relative to the folder)."""
        return self.path / (self.spec().shared_dir or "shared")

    def inputs(self) -> tuple[Path, Path]:
        """The features file and the extra SR-background file."""
        meta = self.meta()
        return Path(meta["inputs"]["features"]), Path(meta["inputs"]["extra"])


def plan_tasks(spec: LhcoSpec) -> tuple[list[dict[str, int]], list[dict[str, Any]]]:
    """The groups and the tasks of a spec.

    Tasks are ordered round-robin over the groups, so the first elements of a job
    array start every group's shared steps at once instead of waiting on one.
    """
    groups = [{"seed": s, "n_signal": n} for n in spec.n_signal for s in spec.seeds]
    per_group: list[dict[str, Any]] = []
    for method in spec.methods:
        classifiers = ["none"] if method in CLASSIFIER_FREE else spec.classifiers
        noises = [0] if method in CLASSIFIER_FREE else spec.noise
        for classifier in classifiers:
            for features in spec.feature_sets:
                for noise in noises:
                    per_group.append(
                        {
                            "method": method,
                            "classifier": classifier,
                            "features": features,
                            "noise": noise,
                        }
                    )
    tasks = [
        {**combo, **group, "group": g} for combo in per_group for g, group in enumerate(groups)
    ]
    return groups, tasks


def _write_synthetic_inputs(spec: LhcoSpec, folder: LhcoFolder) -> tuple[Path, Path]:
    from fedhex_hpc.data.synthetic.lhco import write_extra_background, write_features

    n_extra = spec.inputs.synthetic_extra_events or max(
        1000, round(_EXTRA_SHARE * spec.inputs.synthetic_events)
    )
    features = write_features(
        folder.file("inputs", FEATURES_FILE_NAME), spec.inputs.synthetic_events, seed=1
    )
    extra = write_extra_background(folder.file("inputs", EXTRA_FILE_NAME), n_extra, seed=2)
    return features, extra


def plan_study(
    spec_path: str | Path,
    output: str | Path,
    small: bool = False,
    overrides: dict[str, Any] | None = None,
) -> str:
    """Write an anomaly-detection study folder for a spec; a one-line summary.

    Without input files in the spec, SYNTHETIC files in the public layouts are
    written into ``output/inputs`` (and the summary says so).

    Raises:
        ConfigError: a bad spec, missing inputs, or ``output`` holds a study already.
    """
    spec = load_spec(spec_path, small, overrides)
    folder = LhcoFolder(output)
    if folder.has_marker():
        raise ConfigError(f"{folder.path} holds a study already; choose another -o folder")
    groups, tasks = plan_tasks(spec)
    folder.path.mkdir(parents=True, exist_ok=True)
    if spec.inputs.features:
        features, extra = Path(spec.inputs.features), Path(spec.inputs.extra)
        for path in (features, extra):
            if not path.is_file():
                raise ConfigError(f"inputs: {path} does not exist (fedhex data fetch lhco)")
        origin = str(features)
    else:
        features, extra = _write_synthetic_inputs(spec, folder)
        origin = f"SYNTHETIC files ({spec.inputs.synthetic_events} events)"
    folder.write_marker(
        {
            "name": spec.name,
            "small": small,
            "spec": dataclasses.asdict(spec),
            "inputs": {
                "features": str(features.resolve()),
                "extra": str(extra.resolve()),
                "origin": origin,
            },
            "groups": groups,
            "tasks": tasks,
        }
    )
    return (
        f"lhco_anomaly {spec.name}: {len(tasks)} tasks in {len(groups)} (seed, n_signal) "
        f"groups in {folder.path}, on {origin}"
    )
