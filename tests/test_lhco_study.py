"""The lhco_anomaly study kind: planning, bad specs, the shared steps' keys, and the
small study end to end through `fedhex submit` with the local scheduler."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.studies.lhco_anomaly import LhcoFolder, plan_study
from fedhex_hpc.studies.lhco_anomaly.folder import plan_tasks
from fedhex_hpc.studies.lhco_anomaly.shared import GroupSteps
from fedhex_hpc.studies.lhco_anomaly.spec import load_spec

from .conftest import run_cli

#: The --small study shrunk further for a test: one group, tiny flows, few models.
TINY = {
    "inputs": {"synthetic_events": 30000},
    "seeds": [3],
    "n_signal": [0],
    "reference_n_signal": 0,
    "classifiers": ["trees"],
    "outer_flow": {
        "set": {
            "flow": {"n_blocks": 2, "hidden_units": [16, 16]},
            "train": {"max_epochs": 3, "keep_best_epochs": 2, "threads": 1},
        }
    },
    "inner_flow": {
        "set": {
            "flow": {"n_blocks": 2, "hidden_units": [16, 16]},
            "train": {"max_epochs": 3, "keep_best_epochs": 2, "threads": 1},
        }
    },
    "template": {"n_samples": 6000},
    "trees": {"n_models": 2},
    "evaluation": {"bootstrap": 30},
}


def test_plan_orders_tasks_round_robin_over_groups():
    spec = load_spec("lhco_anomaly")
    groups, tasks = plan_tasks(spec)
    assert len(groups) == len(spec.seeds) * len(spec.n_signal)
    per_group = 4 * len(spec.classifiers) + 1  # ANODE takes no classifier
    assert len(tasks) == per_group * len(groups)
    assert [t["group"] for t in tasks[: len(groups)]] == list(range(len(groups)))
    anode = [t for t in tasks if t["method"] == "anode"]
    assert len(anode) == len(groups) and {t["classifier"] for t in anode} == {"none"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"methods": ["cathode", "cathod"]}, "methods: unknown 'cathod' (did you mean 'cathode'?)"),
        ({"classifiers": ["bdt"]}, "classifiers: unknown 'bdt'"),
        ({"feature_sets": ["all"]}, "feature_sets: unknown 'all'"),
        ({"n_signal": [0, 500], "reference_n_signal": 1000}, "reference_n_signal 1000 is not"),
        ({"inputs": {"features": "a.h5"}}, "inputs needs both features and extra"),
        ({"seeds": []}, "seeds must be a non-empty list"),
    ],
)
def test_bad_specs_are_one_line_errors(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_study("lhco_anomaly", tmp_path / "study", overrides=overrides)
    assert not (tmp_path / "study").exists()


def test_cli_plan_error_is_one_line(tmp_path):
    result = run_cli(
        "lhco",
        "plan",
        "lhco_anomaly",
        "-o",
        str(tmp_path / "s"),
        "--set",
        "methods=[nope]",
        check=False,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "methods: unknown 'nope'" in line


def test_missing_input_files_are_named(tmp_path):
    overrides = {"inputs": {"features": str(tmp_path / "f.h5"), "extra": str(tmp_path / "e.h5")}}
    with pytest.raises(ConfigError, match=r"f\.h5 does not exist \(fedhex data fetch lhco\)"):
        plan_study("lhco_anomaly", tmp_path / "study", overrides=overrides)


def test_condor_submission_is_one_node_per_task(tmp_path):
    if os.environ.get("CI") == "true":
        import htcondor2
    else:
        htcondor2 = pytest.importorskip("htcondor2")
    study = tmp_path / "study"
    run_cli(*tiny_plan_args(study))
    run_cli("submit", str(study), "--scheduler", "condor", "--dry-run")
    submit = htcondor2.Submit((study / "submit" / "tasks.sub").read_text())
    assert [int(i["task_id"]) for i in submit.itemdata()] == list(range(5))
    assert "task" in submit["arguments"] and "FEDHEX_TASK_ID=$(task_id)" in submit["environment"]
    collect = htcondor2.Submit((study / "submit" / "collect.sub").read_text())
    assert "collect" in collect["arguments"]


def test_shared_steps_are_keyed_by_resolved_settings(tmp_path):
    a = tmp_path / "a"
    plan_study("lhco_anomaly", a, small=True, overrides=TINY)
    steps = GroupSteps(LhcoFolder(a), 0)
    flow = steps.flow_dir("outer", "baseline")
    assert flow == GroupSteps(LhcoFolder(a), 0).flow_dir("outer", "baseline")
    assert flow != steps.flow_dir("inner", "baseline")
    assert flow != steps.flow_dir("outer", "extended")
    # another flow setting: another folder for the flow and its template, same data
    b = tmp_path / "b"
    changed = {**TINY, "outer_flow": {"set": {"train": {"max_epochs": 4}}}}
    plan_study("lhco_anomaly", b, small=True, overrides=changed)
    other = GroupSteps(LhcoFolder(b), 0)
    assert other.flow_dir("outer", "baseline").name != flow.name
    assert other.template_dir("baseline").name != steps.template_dir("baseline").name
    # another seed: other data
    c = tmp_path / "c"
    plan_study("lhco_anomaly", c, small=True, overrides={**TINY, "seeds": [4]})
    assert GroupSteps(LhcoFolder(c), 0).prepared_dir().name != steps.prepared_dir().name


def tiny_plan_args(study: Path) -> list[str]:
    """``fedhex lhco plan`` of the --small study shrunk to :data:`TINY`, into ``study``."""
    args = ["lhco", "plan", "lhco_anomaly", "-o", str(study), "--small"]
    for key, value in (
        ("inputs.synthetic_events", 30000),
        ("seeds", "[3]"),
        ("n_signal", "[0]"),
        ("reference_n_signal", 0),
        ("classifiers", "[trees]"),
        ("outer_flow.set", json.dumps(TINY["outer_flow"]["set"])),
        ("inner_flow.set", json.dumps(TINY["inner_flow"]["set"])),
        ("template.n_samples", 6000),
        ("trees.n_models", 2),
        ("evaluation.bootstrap", 30),
    ):
        args += ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> Path:
    study = tmp_path_factory.mktemp("lhco") / "study"
    out = run_cli(*tiny_plan_args(study))
    assert "SYNTHETIC" in out.stdout
    run_cli("submit", str(study), "--scheduler", "local", "--jobs", "2", "--threads", "1")
    return study


def test_small_study_runs_every_method_and_collects(small_study):
    folder = LhcoFolder(small_study)
    assert all(folder.state(i) == "done" for i in range(len(folder.tasks())))
    table = pd.read_csv(small_study / "results.csv")
    assert set(table["method"]) == {"cathode", "anode", "idealized", "supervised", "cwola"}
    for column in (
        "method",
        "classifier",
        "features",
        "seed",
        "n_signal",
        "auc",
        "max_sic",
        "max_sic_25",
        "sic_eff_0.2",
        "closure_auc",
    ):
        assert column in table.columns, column
    assert table["auc"].between(0, 1).all()
    for name in ("sb_scan", "closure_sculpting", "sic_curves"):
        for suffix in ("png", "pdf"):
            assert (small_study / "plots" / f"{name}.{suffix}").stat().st_size > 1000
    assert "| method | n_signal |" in (small_study / "summary.md").read_text()
    # one group: each shared step was built once and reused by every task
    shared = sorted(p.name.split("-")[0] for p in (small_study / "shared").iterdir() if p.is_dir())
    assert shared == ["inner", "outer", "prepare", "template"]


def test_supervised_finds_signal_and_idealized_closes(small_study):
    table = pd.read_csv(small_study / "results.csv").set_index("method")
    # without injected signal the SR data is background: the idealized classifier
    # (SR data vs simulated SR background) must not tell its own reference from
    # true background, while the supervised one separates signal from background
    ideal = table.loc["idealized"]
    assert ideal["closure_low"] <= 0.5 <= ideal["closure_high"]
    assert table.loc["supervised", "auc"] > 0.9


def test_rerun_of_a_done_task_is_skipped_and_force_reruns(small_study):
    out = run_cli("task", str(small_study), "--task", "0")
    assert "done already" in out.stdout
    before = json.loads((small_study / "results" / "0.json").read_text())
    run_cli("task", str(small_study), "--task", "0", "--force")
    after = json.loads((small_study / "results" / "0.json").read_text())
    assert after["method"] == before["method"] and after["auc"] == pytest.approx(before["auc"])


def test_a_second_study_on_the_same_inputs_reuses_the_shared_steps(small_study, tmp_path):
    inputs = small_study / "inputs"
    second = tmp_path / "second"
    args = [
        *tiny_plan_args(second),
        "--set",
        "methods=[cathode]",
        "--set",
        f"inputs.features={inputs / 'events_anomalydetection_v2.features.h5'}",
        "--set",
        f"inputs.extra={inputs / 'events_anomalydetection_qcd_extra_inneronly_features.h5'}",
        "--set",
        f"shared_dir={small_study / 'shared'}",
    ]
    run_cli(*args)
    built = {p: p.stat().st_mtime_ns for p in (small_study / "shared").glob("*/step.json")}
    run_cli("task", str(second), "--task", "0")
    assert {p: p.stat().st_mtime_ns for p in (small_study / "shared").glob("*/step.json")} == built
    first = json.loads((small_study / "results" / "0.json").read_text())
    again = json.loads((second / "results" / "0.json").read_text())
    assert first["method"] == again["method"] == "cathode"
    assert again["auc"] == pytest.approx(first["auc"])
