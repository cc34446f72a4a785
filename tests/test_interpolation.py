"""Interpolation studies: metrics, baselines, geometry, folds, bad input, the synthetic
ROOT grid through ``fedhex data convert root``, and whole small studies run locally
and on the real Slurm test cluster."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import uproot
import yaml
from scipy import stats

from fedhex_hpc.data.synthetic.root_grid import (
    FEDHEX_CONDITIONS,
    FEDHEX_CUT,
    FEDHEX_FEATURES,
    point_file_name,
    write_root_grid,
)
from fedhex_hpc.errors import ConfigError
from fedhex_hpc.evaluate.metrics import (
    classifier_auc_test,
    histogram_chi2_2d,
    permutation_p_value,
)
from fedhex_hpc.studies.interpolation.baselines import morph_quantiles, morphed_events
from fedhex_hpc.studies.interpolation.folder import InterpolationFolder
from fedhex_hpc.studies.interpolation.geometry import LabelSpace
from fedhex_hpc.studies.interpolation.judge import shifts, verdict, worst
from fedhex_hpc.studies.interpolation.labelled import open_data
from fedhex_hpc.studies.interpolation.spec import DataSpec, SplitSpec, load_spec
from fedhex_hpc.studies.interpolation.split import make_folds
from fedhex_hpc.studies.interpolation.study import plan_study
from fedhex_hpc.studies.registry import open_study

from .conftest import run_cli
from .test_slurm_jobs import submit_and_wait

TINY = {
    "flow": {
        "base": "cond/interp",
        "set": {
            "flow.n_blocks": 2,
            "flow.hidden_units": [16, 16],
            "train.max_epochs": 2,
            "train.batch_size": 256,
            "train.threads": 1,
            "train.log_every": 100,
        },
    },
    "judge": {
        "n_generated": 1500,
        "bins": 20,
        "auc_events": 400,
        "auc_permutations": 1,
        "bootstrap": 10,
    },
}


def write_spec(folder: Path, **sections) -> Path:
    """A tiny interpolation spec (2-block flow, 2 epochs, small judge) with ``sections``."""
    raw = {"name": "tiny", "seed": 3, **TINY, **sections}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def one_line_error(*args: str) -> str:
    """Run the CLI, expect exit code 2 and a one-line message; return it."""
    result = run_cli(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- metrics ------------------------------------------------------------------------


def test_quantile_morphing_reproduces_a_shifted_and_scaled_gaussian_exactly():
    u = np.linspace(0.001, 0.999, 999)
    low = stats.norm.ppf(u, loc=1.0, scale=0.5)
    high = stats.norm.ppf(u, loc=3.0, scale=1.5)
    t = 0.25
    morphed = morph_quantiles(np.stack([low, high]), np.array([1 - t, t]))
    np.testing.assert_allclose(morphed, stats.norm.ppf(u, loc=1.5, scale=0.75), rtol=1e-12)


def test_quantile_morphing_rejects_weights_not_summing_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        morph_quantiles(np.zeros((2, 3)), np.array([0.5, 0.6]))


def test_morphed_events_lie_between_two_gaussian_points():
    rng = np.random.default_rng(1)
    a = rng.normal([0.0, 10.0], [1.0, 2.0], size=(20000, 2))
    b = rng.normal([2.0, 20.0], [1.0, 4.0], size=(20000, 2))
    x = morphed_events([a, b], np.array([0.5, 0.5]), a)
    np.testing.assert_allclose(x.mean(axis=0), [1.0, 15.0], atol=0.05)
    np.testing.assert_allclose(x.std(axis=0), [1.0, 3.0], rtol=0.03)


@pytest.mark.parametrize(
    ("value", "error", "expected"),
    [
        (0.005, 0.003, "met"),
        (-0.009, 0.009, "met"),
        (0.005, 0.02, "not resolvable"),
        (0.03, 0.02, "not resolvable"),
        (0.5, 0.02, "not met"),
        (0.015, 0.004, "not met"),
        (float("nan"), 0.01, "not resolvable"),
    ],
)
def test_one_percent_verdict(value, error, expected):
    assert verdict(value, error, 0.01) == expected


def test_a_point_takes_the_worst_verdict():
    assert worst(["met", "met"]) == "met"
    assert worst(["met", "not resolvable"]) == "not resolvable"
    assert worst(["not resolvable", "not met", "met"]) == "not met"


def test_permutation_p_value_is_uniform_under_the_null():
    rng = np.random.default_rng(7)

    def mean_gap(a: np.ndarray, b: np.ndarray) -> float:
        return abs(float(a.mean() - b.mean()))

    p = np.array(
        [
            permutation_p_value(
                rng.normal(size=(30, 1)), rng.normal(size=(30, 1)), mean_gap, 19, i
            ).p_value
            for i in range(300)
        ]
    )
    assert set(np.round(p * 20).astype(int)) <= set(range(1, 21))
    assert abs(p.mean() - 0.525) < 0.05  # the mean of the uniform on {1/20, ..., 1}
    assert 0.02 < np.mean(p <= 0.1) < 0.18
    shifted = permutation_p_value(
        rng.normal(size=(30, 1)), rng.normal(2, 1, (30, 1)), mean_gap, 19, 0
    )
    assert shifted.p_value == pytest.approx(1 / 20)


def test_classifier_auc_test_tells_shifted_samples_apart():
    rng = np.random.default_rng(2)
    found = classifier_auc_test(
        rng.normal(1.0, 1.0, (400, 2)), rng.normal(size=(400, 2)), seed=2**40, permutations=3
    )
    assert found.statistic > 0.65 and found.p_value == pytest.approx(0.25)


def test_histogram_chi2_2d_is_near_one_per_dof_for_equal_samples_and_large_when_shifted():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(20000, 2)), rng.normal(size=(20000, 2))
    same = histogram_chi2_2d(a, b, bins=10)
    assert 0.6 < same.chi2 / same.ndf < 1.5
    assert histogram_chi2_2d(a, b + np.array([0.3, 0.0]), bins=10).p_value < 1e-6
    with pytest.raises(ValueError, match="2 features"):
        histogram_chi2_2d(rng.normal(size=(10, 3)), rng.normal(size=(10, 3)))


def test_shifts_in_units_of_the_truth_width_with_bootstrap_errors():
    rng = np.random.default_rng(4)
    n = 20000
    found = shifts(rng.normal(0, 1, n), rng.normal(0.1, 1.1, n), rng, 100)
    value, error = found["dmean"]
    assert abs(value - 0.1) < 4 * error and 0.6 * np.sqrt(2 / n) < error < 1.5 * np.sqrt(2 / n)
    assert abs(found["dsigma"][0] - 0.1) < 4 * found["dsigma"][1]
    assert abs(found["dq50"][0] - 0.1) < 4 * found["dq50"][1]


# --- geometry and folds -------------------------------------------------------------


def test_label_space_hull_nearest_and_morphing_weights_on_a_grid():
    grid = np.array([[x, y] for x in (0.0, 1.0, 2.0) for y in (0.0, 10.0, 20.0)])
    training = np.delete(grid, 4, axis=0)  # without the centre (1, 10)
    space = LabelSpace(training, grid)
    assert space.dim == 2
    assert not space.outside_hull(np.array([1.0, 10.0]))
    assert space.outside_hull(np.array([2.5, 10.0]))
    assert not space.outside_hull(np.array([2.0, 10.0]))  # on the edge
    indices, weights = space.morph_weights(np.array([1.0, 10.0]))
    assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights @ training[indices], [1.0, 10.0], atol=1e-12)
    assert tuple(training[space.nearest(np.array([1.9, 1.0]))]) == (2.0, 0.0)


def test_points_on_a_line_in_a_label_plane_are_one_dimensional():
    line = np.stack([np.arange(5.0), np.arange(5.0)], axis=1)
    space = LabelSpace(line[[0, 1, 3, 4]], line)
    assert space.dim == 1
    assert not space.outside_hull(line[2]) and space.outside_hull(np.array([5.0, 5.0]))
    indices, weights = space.morph_weights(line[2])
    assert sorted(indices.tolist()) == [1, 2] and weights == pytest.approx([0.5, 0.5])
    indices, weights = space.morph_weights(np.array([5.0, 5.0]))  # linear extrapolation
    np.testing.assert_allclose(weights @ line[[0, 1, 3, 4]][indices], [5.0, 5.0])


def test_folds_of_each_split_mode():
    data = open_data(DataSpec(target="cond/line", n_train=20, min_events=10), seed=1)
    (every,) = make_folds(SplitSpec(mode="every", every=3, offset=1, controls=2), data)
    assert every.heldout == [1, 4, 7] and len(every.controls) == 2
    assert set(every.controls) <= set(every.training)
    loo = make_folds(SplitSpec(mode="leave_one_out", points=[[0.0, 0.0], [1.0, 1.0]]), data)
    assert [f.heldout for f in loo] == [[0], [9]]
    assert len(make_folds(SplitSpec(mode="leave_one_out"), data)) == 10


def test_gauss_exp_points_include_the_innfer_held_out_masses():
    data = open_data(DataSpec(target="cond/gauss_exp_bkg", n_train=20, min_events=10), seed=1)
    assert data.points[:, 0].tolist() == list(np.arange(166.0, 181.0))


# --- bad input ----------------------------------------------------------------------


def test_held_out_point_not_in_the_data_is_a_one_line_error(tmp_path):
    spec = write_spec(
        tmp_path, data={"target": "cond/line"}, split={"mode": "list", "points": [[0.5, 0.5]]}
    )
    message = one_line_error("interpolation", "plan", str(spec), "-o", str(tmp_path / "s"))
    assert "(cx=0.5, cy=0.5) is not a label point" in message
    assert not (tmp_path / "s" / "study.json").exists()


def test_every_point_held_out_is_a_one_line_error(tmp_path):
    points = [[v / 9, v / 9] for v in range(10)]
    spec = write_spec(
        tmp_path, data={"target": "cond/line"}, split={"mode": "list", "points": points}
    )
    message = one_line_error("interpolation", "plan", str(spec), "-o", str(tmp_path / "s"))
    assert "10 of 10 label points held out leaves 0 to train on" in message


def test_label_that_a_target_lacks_is_a_one_line_error(tmp_path):
    spec = write_spec(tmp_path, data={"target": "cond/line", "labels": ["cx", "cz"]})
    message = one_line_error("interpolation", "plan", str(spec), "-o", str(tmp_path / "s"))
    assert "no label column 'cz'" in message


def test_spec_with_both_kinds_of_data_is_refused(tmp_path):
    spec = write_spec(tmp_path, data={"target": "cond/line", "dataset": "somewhere"})
    with pytest.raises(ConfigError, match=r"exactly one of data\.target and data\.dataset"):
        load_spec(spec)


def test_flow_overrides_of_study_keys_are_refused(tmp_path):
    spec = write_spec(
        tmp_path,
        data={"target": "cond/line"},
        flow={"base": "cond/interp", "set": {"data.n_train": 5}},
    )
    with pytest.raises(ConfigError, match=r"flow.set.data.n_train is set by the interpolation"):
        load_spec(spec)


# --- the synthetic ROOT grid --------------------------------------------------------


@pytest.fixture(scope="module")
def root_dataset(tmp_path_factory) -> Path:
    """The synthetic grid (300 events a point) converted by ``fedhex data convert root``."""
    folder = tmp_path_factory.mktemp("root-grid")
    run_cli("interpolation", "root-grid", "-o", str(folder / "root"), "-n", "300")
    args = ["data", "convert", "root", str(folder / "root"), "--tree", "Events"]
    for option, columns in (("--feature", FEDHEX_FEATURES), ("--condition", FEDHEX_CONDITIONS)):
        for name, expression in columns.items():
            args += [option, f"{name}={expression}"]
    run_cli(*args, "--cut", FEDHEX_CUT, "-o", str(folder / "dataset"), "--workers", "1")
    return folder / "dataset"


def test_root_grid_files_have_the_fedhex_layout(tmp_path):
    (path,) = write_root_grid(tmp_path, n_events=50, phi_masses=[2000.0], omega_masses=[1.5])
    assert path.name == point_file_name(2000.0, 1.5)
    tree = uproot.open(path)["Events"]
    for branch in (
        "CBL_RecoPhi_mass",
        "TwoProng_massPi0",
        "CBL_RecoPhi_twoprongindex",
        "Photon_pt",
        "CBL_RecoPhi_photonindex",
        "CBL_Region",
        "GenPhi_mass",
        "GenOmega_mass",
        "nTwoProng",
        "nPhoton",
    ):
        assert branch in tree, branch
    arrays = tree.arrays(["GenPhi_mass", "TwoProng_massPi0", "CBL_RecoPhi_twoprongindex"])
    assert set(np.asarray(arrays["GenPhi_mass"][:, 0])) == {2000.0}
    index = np.asarray(arrays["CBL_RecoPhi_twoprongindex"])
    assert (index < np.asarray([len(v) for v in arrays["TwoProng_massPi0"]])).all()
    assert (index == -1).any() and (index >= 0).any()


def test_resolutions_grow_with_mass(tmp_path):
    paths = write_root_grid(
        tmp_path, n_events=3000, phi_masses=[1000.0, 3000.0], omega_masses=[2.0]
    )
    widths = []
    for path in paths:
        mass = uproot.open(path)["Events"]["CBL_RecoPhi_mass"].array(library="np")
        mass = mass[mass > 0]
        widths.append(mass.std() / np.median(mass))
    assert widths[1] > 1.3 * widths[0]


def test_root_folder_without_the_tree_names_the_file(tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    with uproot.recreate(folder / "other.root") as fh:
        fh["Other"] = {"x": np.arange(5.0)}
    message = one_line_error(
        "data",
        "convert",
        "root",
        str(folder),
        "--tree",
        "Events",
        "--feature",
        "x",
        "-o",
        str(tmp_path / "out"),
    )
    assert "other.root" in message and "no tree 'Events'" in message


def test_label_branch_missing_from_the_root_files_names_the_branch(tmp_path):
    write_root_grid(tmp_path / "root", n_events=20, phi_masses=[1000.0], omega_masses=[0.5])
    message = one_line_error(
        "data",
        "convert",
        "root",
        str(tmp_path / "root"),
        "--tree",
        "Events",
        "--feature",
        "phi=CBL_RecoPhi_mass",
        "--condition",
        "m_rho=GenRho_mass[0]",
        "-o",
        str(tmp_path / "out"),
    )
    assert "Phi1000_omega0.5.root" in message and "unknown branch 'GenRho_mass'" in message


def test_root_study_plans_with_dropped_points_and_refuses_bad_points(root_dataset, tmp_path):
    spec = write_spec(
        tmp_path,
        data={"dataset": str(root_dataset), "min_events": 50},
        split={"mode": "list", "points": [[2000, 1.5]], "controls": 1},
        equalise_weights=True,
    )
    out = run_cli("interpolation", "plan", str(spec), "-o", str(tmp_path / "s")).stdout
    assert "23 label points (m_phi, m_omega)" in out
    assert "dropped point (m_phi=1000, m_omega=2.5):" in out
    assert "fewer than data.min_events 50" in out
    assert (
        InterpolationFolder(tmp_path / "s")
        .meta()["dropped"][1]
        .startswith("dropped point (m_phi=3000, m_omega=0.5)")
    )
    sparse = write_spec(
        tmp_path,
        data={"dataset": str(root_dataset), "min_events": 50},
        split={"mode": "list", "points": [[3000, 0.5]]},
    )
    message = one_line_error("interpolation", "plan", str(sparse), "-o", str(tmp_path / "t"))
    assert "held-out point (m_phi=3000, m_omega=0.5) has" in message
    assert "fewer than data.min_events" in message
    unknown = write_spec(
        tmp_path, data={"dataset": str(root_dataset), "labels": ["m_phi", "m_rho"]}
    )
    message = one_line_error("interpolation", "plan", str(unknown), "-o", str(tmp_path / "u"))
    assert "no label column 'm_rho'" in message


def test_root_study_runs_a_fold_with_equalised_weights_and_collects(root_dataset, tmp_path):
    spec = write_spec(
        tmp_path,
        data={"dataset": str(root_dataset), "min_events": 50},
        split={"mode": "list", "points": [[2000, 1.5], [3000, 2.5]], "controls": 1},
        equalise_weights=True,
    )
    study = tmp_path / "s"
    plan_study(spec, study)
    out = run_cli("task", str(study), "--task", "0").stdout
    assert "fold 0:" in out and "of 2 held-out points" in out
    with h5py.File(study / "folds" / "0" / "training.h5", "r") as fh:
        labels = np.stack([fh["m_phi"][()], fh["m_omega"][()]], axis=1)
        weight = fh["weight"][()]
    _, inverse = np.unique(labels, axis=0, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=weight)
    assert len(sums) == 21 and np.allclose(sums, sums[0], rtol=1e-4)
    assert weight.mean() == pytest.approx(1.0, rel=1e-4)
    run_cli("collect", str(study))
    table = pd.read_csv(study / "points.csv")
    flags = table[table["method"] == "flow"].set_index("point")["extrapolation"]
    assert not flags["(m_phi=2000, m_omega=1.5)"] and flags["(m_phi=3000, m_omega=2.5)"]
    assert (study / "plots" / "map.png").is_file() and (study / "plots" / "map.pdf").is_file()


# --- whole studies ------------------------------------------------------------------


def test_small_study_plans_runs_locally_collects_and_plots(tmp_path):
    spec = write_spec(
        tmp_path,
        data={"target": "cond/gauss_exp_bkg", "n_train": 300, "n_truth": 2000},
        split={"mode": "list", "points": [[171.0], [180.0]], "controls": 1},
    )
    study = tmp_path / "study"
    run_cli("interpolation", "plan", str(spec), "-o", str(study))
    assert open_study(study).task_ids(study) == [0]
    run_cli("submit", str(study), "--scheduler", "local", "--jobs", "1")
    result = json.loads((study / "results" / "0.json").read_text())
    roles = [(p["label"], p["role"], p["extrapolation"]) for p in result["points"]]
    assert roles == [
        ("(mass_true=171)", "heldout", False),
        ("(mass_true=180)", "heldout", True),
        ("(mass_true=166)", "control", False),
    ]
    flow = result["points"][0]["methods"]["flow"]
    assert flow["kl"] is not None and flow["verdict"] in ("met", "not met", "not resolvable")
    assert result["points"][0]["methods"]["nearest"]["kl"] is None
    assert result["points"][0]["morph_weights"] == pytest.approx([0.5, 0.5])
    table = pd.read_csv(study / "points.csv")
    assert len(table) == 9 and set(table["method"]) == {"flow", "nearest", "morph"}
    for column in ("dmean_mass_reco", "dsigma_err_mass_reco", "dq90_mass_reco", "ks_p_mass_reco"):
        assert table[column].notna().all(), column
    summary = (study / "summary.md").read_text()
    assert "2 held-out points (1 outside" in summary and "flow vs morph" in summary
    assert "| (mass_true=180) | heldout | yes |" in (study / "points.md").read_text()
    for name in ("vs_label", "points/0-5-heldout", "points/0-14-heldout", "points/0-0-control"):
        for suffix in ("png", "pdf"):
            assert (study / "plots" / f"{name}.{suffix}").is_file(), name


def test_bundled_studies_plan_with_their_small_variants(tmp_path):
    for name, tasks, heldout in (
        ("interp_grid", 1, 33),
        ("interp_line", 1, 3),
        ("interp_gauss_exp", 1, 4),
    ):
        spec = load_spec(name, small=True)
        assert spec.flow.set["train.max_epochs"] <= 20
        plan_study(name, tmp_path / name, small=True)
        folds = InterpolationFolder(tmp_path / name).folds()
        assert len(folds) == tasks and len(folds[0]["heldout"]) == heldout


def test_bundled_root_study_needs_a_dataset(tmp_path):
    with pytest.raises(ConfigError, match=r"exactly one of data\.target and data\.dataset"):
        load_spec("interp_root", small=True)


def test_replanning_another_study_into_a_folder_is_refused(tmp_path):
    plan_study("interp_line", tmp_path / "s", small=True)
    plan_study("interp_line", tmp_path / "s", small=True)  # the same: a no-op
    with pytest.raises(ConfigError, match="already holds another study"):
        plan_study("interp_line", tmp_path / "s")


def test_leave_one_out_folds_as_a_slurm_job_array(slurm_cluster, tmp_path):
    spec = write_spec(
        tmp_path,
        data={"target": "cond/grid", "n_train": 60, "n_truth": 1000, "min_events": 10},
        split={"mode": "leave_one_out", "points": [[0.0, 0.0], [4 / 9, 4 / 9]], "controls": 0},
    )
    study = tmp_path / "study"
    plan_study(spec, study)
    array_id = submit_and_wait(slurm_cluster, study)
    folder = InterpolationFolder(study)
    assert [folder.state(i) for i in (0, 1)] == ["done", "done"]
    assert len(list((study / "logs").glob(f"{array_id}_*.out"))) == 2
    table = pd.read_csv(study / "points.csv")
    assert table.groupby("fold")["point"].first().tolist() == [
        "(cx=0, cy=0)",
        "(cx=0.444444, cy=0.444444)",
    ]
    assert table.set_index(["fold", "method"]).loc[(0, "flow"), "extrapolation"]
    assert (study / "plots" / "map.png").is_file()


def test_bundled_line_study_runs_its_small_variant(tmp_path):
    study = tmp_path / "line"
    run_cli("interpolation", "plan", "interp_line", "--small", "-o", str(study))
    out = run_cli("submit", str(study), "--scheduler", "local", "--jobs", "1").stdout
    assert "3 held-out points (0 outside" in out
    table = pd.read_csv(study / "points.csv")
    assert sorted(set(table["role"])) == ["control", "heldout"] and len(table) == 15
    assert table["kl"].notna().sum() == 5  # the flow's, at every judged point
    assert (study / "plots" / "vs_label.pdf").is_file()
