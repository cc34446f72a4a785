"""Likelihood fits, scans and toy studies of ``fedhex infer`` on cond/gauss_exp_bkg."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fedhex_hpc.cli import main
from fedhex_hpc.config import parse_config, parse_section
from fedhex_hpc.errors import ConfigError, DataError, RunDirError
from fedhex_hpc.infer import NLL, build_model, fit, scan_1d
from fedhex_hpc.infer.model import ModelSpec
from fedhex_hpc.targets import get_target

from .conftest import run_cli, small_raw

TARGET = "cond/gauss_exp_bkg"


def exact_spec(likelihood: str = "extended", events: float = 1000.0, **extra) -> dict:
    """A model spec with the exact density and a free normalisation."""
    return {
        "name": "exact",
        "likelihood": likelihood,
        "processes": {
            "peak": {
                "target": TARGET,
                "events": events,
                "rates": ["norm"],
                "conditions": {"mass_true": "mass"},
            }
        },
        **extra,
    }


def model_of(raw: dict, base: Path = Path("."), extrapolate: bool = False):
    return build_model(parse_section(ModelSpec, raw, ""), base, extrapolate)


def events(mass: float, n: int, seed: int) -> np.ndarray:
    return get_target(TARGET).sample_given(np.full((n, 1), mass), seed=seed)


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory) -> Path:
    """A tiny conditional flow trained on the target's training masses (smooth: see README)."""
    from fedhex_hpc.studies.steps import ensure_trained

    raw = small_raw(
        data={"target": TARGET, "n_train": 2048, "n_val": 256, "n_test": 256},
        flow={"n_blocks": 1, "hidden_units": [8], "preprocessing": "logit", "activation": "silu"},
        train={"max_epochs": 1, "batch_size": 512},
        evaluate={"n_kl_samples": 500, "n_generated": 500, "plots": False},
    )
    run = tmp_path_factory.mktemp("flow") / "run"
    ensure_trained(parse_config(raw), run)
    return run


def write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def write_events(path: Path, x: np.ndarray, name: str = "mass_reco", **more) -> Path:
    np.savez(path, **{name: x[:, 0]}, **more)
    return path


# --- the likelihood ------------------------------------------------------------------
def test_nll_matches_iminuit_cost_functions():
    from iminuit.cost import ExtendedUnbinnedNLL, UnbinnedNLL

    target, x = get_target(TARGET), events(172.0, 500, 1)

    def log_pdf(data, mass):
        return target.log_prob(data[:, None], np.full((len(data), 1), mass))

    ours = NLL(model_of(exact_spec("shape")), x)
    theirs = UnbinnedNLL(x[:, 0], log_pdf, log=True)
    ext = NLL(model_of(exact_spec("extended", events=480.0)), x)
    ext_theirs = ExtendedUnbinnedNLL(
        x[:, 0], lambda d, nu, m: (nu, np.log(nu) + log_pdf(d, m)), log=True
    )
    for mass, norm in ((172.0, 1.0), (170.5, 1.1), (175.0, 0.9)):
        value = ours.evaluate(np.array([mass, norm]), gradient=False)[0][0]
        assert value == pytest.approx(theirs(mass), rel=1e-9)  # both −2 ln L
        value = ext.evaluate(np.array([mass, norm]), gradient=False)[0][0]
        assert value == pytest.approx(ext_theirs(480.0 * norm, mass), rel=1e-9)


def test_batched_evaluation_equals_points_and_gradient_is_the_derivative():
    model = model_of(exact_spec())
    nll = NLL(model, events(171.0, 800, 2))
    points = np.array([[170.0, 0.9], [171.0, 1.0], [172.5, 1.2]])
    values, grads = nll.evaluate(points)
    for point, value in zip(points, values, strict=True):
        assert nll(*point) == pytest.approx(value, rel=1e-12)
    step = np.array([1e-4, 1e-6])
    for j in range(2):
        up, down = points.copy(), points.copy()
        up[:, j] += step[j]
        down[:, j] -= step[j]
        numeric = (nll.evaluate(up, False)[0] - nll.evaluate(down, False)[0]) / (2 * step[j])
        np.testing.assert_allclose(grads[:, j], numeric, rtol=1e-4)


def test_flow_batched_evaluation_equals_per_point_log_prob(flow_run):
    from fedhex_hpc.infer.density import FlowDensity

    density = FlowDensity.open(flow_run)
    x = events(171.0, 300, 3)
    conds = np.array([[167.0], [171.0], [179.5]])
    value, grad = density.evaluate(x, conds)
    for k, cond in enumerate(conds):
        single = density.flow.log_prob(
            x.astype(np.float32), np.repeat(cond[None].astype(np.float32), len(x), 0)
        ).numpy()
        np.testing.assert_allclose(value[k], single, rtol=1e-6, atol=1e-6)
    h = 0.05
    up = density.evaluate(x, conds + h, gradient=False)[0]
    down = density.evaluate(x, conds - h, gradient=False)[0]
    np.testing.assert_allclose(grad[..., 0], (up - down) / (2 * h), rtol=0.02, atol=2e-3)


# --- fits ------------------------------------------------------------------------------
def test_fit_recovers_the_truth_on_a_large_sample():
    model = model_of(exact_spec(events=20000.0))
    result = fit(NLL(model, events(174.0, 20000, 4)), model)
    mass, norm = result["parameters"]["mass"], result["parameters"]["norm"]
    assert result["valid"] and result["convention"] == "-2 ln L, errordef = 1"
    assert abs(mass["value"] - 174.0) < 3 * mass["error"] and mass["error"] < 0.05
    assert abs(norm["value"] - 1.0) < 3 * norm["error"]
    assert mass["minos"]["lower"] < 0 < mass["minos"]["upper"]
    assert np.allclose(np.diag(result["correlations"]), 1.0)


def test_binned_fit_agrees_with_the_unbinned_fit():
    x = events(171.0, 5000, 5)
    unbinned = fit(NLL(model_of(exact_spec(events=5000.0)), x), model_of(exact_spec()), minos=[])
    raw = exact_spec("binned", 5000.0, binning={"bins": 100, "range": [160.0, 185.0]})
    model = model_of(raw)
    binned = fit(NLL(model, x), model, minos=[])
    a, b = unbinned["parameters"]["mass"], binned["parameters"]["mass"]
    assert abs(a["value"] - b["value"]) < 0.25 * a["error"]
    assert b["error"] == pytest.approx(a["error"], rel=0.15)


def test_two_process_fit_recovers_signal_strength_and_mass():
    from fedhex_hpc.studies.toys.spec import load_spec

    fits = load_spec("infer_gauss_exp_bkg_2proc").fits
    model = model_of({**fits["exact"], "name": "two"})
    assert model.kinds == ["condition", "rate", "rate"]  # mass, mu, nb
    result = fit(NLL(model, events(174.0, 1000, 15)), model)
    for name, truth in (("mass", 174.0), ("mu", 1.0), ("nb", 1.0)):
        info = result["parameters"][name]
        assert abs(info["value"] - truth) < 3 * info["error"], name
        assert info["minos"]["valid"], name
    assert result["correlations"][1][2] < 0  # signal and background yields anticorrelate


def test_minos_and_scan_intervals_agree():
    model = model_of(exact_spec())
    nll = NLL(model, events(177.0, 1000, 6))
    result = fit(nll, model)
    table, summary = scan_1d(nll, model, result, "mass")
    assert len(table) == 41 and table["delta"].min() == pytest.approx(0, abs=1e-6)
    best, minos = result["parameters"]["mass"]["value"], result["parameters"]["mass"]["minos"]
    sigma = result["parameters"]["mass"]["error"]
    one = summary["intervals"]["1sigma"]
    assert one["lower"] == pytest.approx(best + minos["lower"], abs=0.02 * sigma)
    assert one["upper"] == pytest.approx(best + minos["upper"], abs=0.02 * sigma)
    two = summary["intervals"]["2sigma"]
    assert two["upper"] - two["lower"] == pytest.approx(4 * sigma, rel=0.05)


def test_weighted_fit_uses_the_sandwich_covariance():
    """Weight 2 on every event: the sandwich recovers the unweighted (relative) errors; the
    inverse Hessian alone is too small by sqrt(2). The yield doubles with the weights."""
    model = model_of(exact_spec(events=4000.0))
    x = events(172.0, 4000, 7)
    plain = fit(NLL(model, x), model, minos=[])
    weighted = fit(NLL(model, x, np.full(len(x), 2.0)), model, minos=[])
    assert weighted["covariance_kind"] == "sandwich"
    assert weighted["parameters"]["mass"]["value"] == pytest.approx(
        plain["parameters"]["mass"]["value"], abs=1e-3 * plain["parameters"]["mass"]["error"]
    )
    assert weighted["parameters"]["norm"]["value"] == pytest.approx(2.0, rel=1e-4)
    for name, scale in (("mass", 1.0), ("norm", 2.0)):
        ratio = weighted["parameters"][name]["error"] / plain["parameters"][name]["error"]
        assert ratio / scale == pytest.approx(1.0, abs=0.05), name
        naive = weighted["parameters"][name]["hesse_error"] / plain["parameters"][name]["error"]
        assert naive / scale == pytest.approx(1 / np.sqrt(2), rel=0.02), name


def test_rate_and_shift_nuisances_enter_the_likelihood():
    raw = exact_spec()
    raw["processes"]["peak"]["lognormal"] = {"lumi": 1.05}
    raw["processes"]["peak"]["shifts"] = {"mass_true": {"scale": 0.3}}
    model = model_of(raw)
    kinds = dict(zip(model.names, model.kinds, strict=True))
    assert kinds == {"mass": "condition", "norm": "rate", "lumi": "nuisance", "scale": "nuisance"}
    nll = NLL(model, events(172.0, 1000, 8))

    def at(**values: float) -> float:
        point = {"mass": 172.0, "norm": 1.0, "lumi": 0.0, "scale": 0.0, **values}
        return nll(*(point[n] for n in model.names))

    # one unit of `scale` moves the mass by 0.3, one unit of `lumi` scales the yield by
    # 1.05; each adds 1 (its unit Gaussian constraint) to −2 ln L
    assert at(scale=1.0) == pytest.approx(at(mass=172.3) + 1.0, rel=1e-12)
    assert at(lumi=1.0) == pytest.approx(at(norm=1.05) + 1.0, rel=1e-12)
    assert model.limits[model.index("lumi")] == (-5.0, 5.0)


# --- the CLI and bad input -------------------------------------------------------------
def test_fit_and_scan_from_the_cli(tmp_path, flow_run, capsys):
    raw = exact_spec()
    raw["processes"]["peak"] = {
        "flow": str(flow_run),
        "events": 1000.0,
        "rates": ["norm"],
        "conditions": {"mass_true": "mass"},
    }
    spec = write_yaml(tmp_path / "model.yaml", raw)
    data = write_events(tmp_path / "data.npz", events(171.0, 1000, 9))
    assert (
        main(["infer", "fit", str(spec), "--data", str(data), "-o", str(tmp_path / "f.json")]) == 0
    )
    result = json.loads((tmp_path / "f.json").read_text())
    assert result["convention"] == "-2 ln L, errordef = 1" and result["valid"]
    for key in ("covariance", "correlations", "edm", "calls", "minus_two_log_likelihood"):
        assert key in result
    assert result["parameters"]["mass"]["minos"]["valid"]
    out = tmp_path / "scan.csv"
    code = main(
        [
            "infer",
            "scan",
            str(spec),
            "--data",
            str(data),
            "--param",
            "mass",
            "--points",
            "11",
            "-o",
            str(out),
        ]
    )
    assert code == 0 and "1sigma" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 11 and out.with_suffix(".png").is_file()
    assert out.with_suffix(".pdf").is_file()
    out2 = tmp_path / "scan2.csv"
    code = main(
        [
            "infer",
            "scan",
            str(spec),
            "--data",
            str(data),
            "--param",
            "mass",
            "--param2",
            "norm",
            "--points",
            "5",
            "-o",
            str(out2),
        ]
    )
    assert code == 0 and len(pd.read_csv(out2)) == 25


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conditions": {"mass": "mass"}}, "mass is not a condition of"),
        ({"conditions": {}}, "give a parameter or a number for mass_true"),
        ({"parameters": {"mas": {"start": 172.0}}}, "parameters.mas is used by no process"),
        ({"parameters": {"mass": {"limits": [150.0, 180.0]}}}, "leave the trained range"),
        ({"parameters": {"mass": {"start": 181.0}}}, "outside its limits"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, flow_run, capsys, change, message):
    raw = exact_spec()
    process = {"flow": str(flow_run), "events": 1000.0, "conditions": {"mass_true": "mass"}}
    raw["processes"]["peak"] = {**process, **{k: v for k, v in change.items() if k != "parameters"}}
    raw["parameters"] = change.get("parameters", {})
    spec = write_yaml(tmp_path / "model.yaml", raw)
    data = write_events(tmp_path / "data.npz", events(171.0, 100, 10))
    assert main(["infer", "fit", str(spec), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_extrapolation_needs_the_flag(tmp_path):
    raw = exact_spec(parameters={"mass": {"start": 165.0, "limits": [160.0, 181.0]}})
    with pytest.raises(ConfigError, match="pass --allow-extrapolation"):
        model_of(raw)
    assert model_of(raw, extrapolate=True).limits[0] == (160.0, 181.0)


def test_bad_data_are_one_line_errors(tmp_path, capsys):
    spec = write_yaml(tmp_path / "model.yaml", exact_spec())
    wrong = write_events(tmp_path / "wrong.npz", events(171.0, 50, 11), name="m_reco")
    empty = write_events(tmp_path / "empty.npz", np.zeros((0, 1)))
    for data, message in ((wrong, "no column 'mass_reco'"), (empty, "holds no events")):
        assert main(["infer", "fit", str(spec), "--data", str(data)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    data = write_events(tmp_path / "ok.npz", events(171.0, 50, 11))
    assert main(["infer", "scan", str(spec), "--data", str(data), "--param", "mu"]) == 2
    assert "has no parameter mu" in capsys.readouterr().err


def test_an_unfinished_run_is_refused(tmp_path, flow_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(flow_run, run)
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "running"}))
    raw = exact_spec()
    raw["processes"]["peak"] = {"flow": str(run), "conditions": {"mass_true": "mass"}}
    with pytest.raises(RunDirError, match="is not finished"):
        model_of(raw)


def test_a_fit_that_does_not_converge_exits_non_zero(tmp_path, capsys):
    spec = write_yaml(tmp_path / "model.yaml", exact_spec())
    data = write_events(tmp_path / "data.npz", events(171.0, 200, 12))
    out = str(tmp_path / "f.json")
    code = main(["infer", "fit", str(spec), "--data", str(data), "-o", out, "--max-calls", "3"])
    err = capsys.readouterr().err
    assert code == 4 and "did not converge: EDM" in err
    assert json.loads((tmp_path / "f.json").read_text())["valid"] is False


def test_empty_events_in_code_are_data_errors():
    with pytest.raises(DataError, match="empty"):
        NLL(model_of(exact_spec()), np.zeros((0, 1)))


# --- toys --------------------------------------------------------------------------------
def toys_spec(tmp_path: Path, **changes) -> Path:
    raw = {
        "name": "toys-test",
        "seed": 5,
        "parameter": "mass",
        "truths": [171.0, 177.0],
        "events": 1000,
        "toys": 4,
        "block": 4,
        "generate": {"target": TARGET},
        "fits": {"exact": exact_spec()},
        **changes,
    }
    return write_yaml(tmp_path / "toys.yaml", raw)


def test_toys_plan_run_locally_and_collect(tmp_path):
    study = tmp_path / "study"
    spec = toys_spec(tmp_path, truths=[171.0, 177.0], toys=3, block=3, events=300)
    run_cli("infer", "toys", "plan", str(spec), "-o", str(study))
    run_cli("submit", str(study), "--scheduler", "local", "--jobs", "2")
    summary = pd.read_csv(study / "summary.csv")
    assert list(summary["truth"]) == [171.0, 177.0] and (summary["valid"] == 3).all()
    assert (study / "plots" / "truth_171.png").is_file()
    assert (study / "plots" / "overview.pdf").is_file()
    assert "68.27% MINOS" in (study / "summary.md").read_text()
    assert "done         2" in run_cli("status", str(study)).stdout


def test_coverage_of_the_exact_fit_is_inside_its_band(tmp_path):
    """120 seeded toys of 300 events at one held-out mass, fitted with the exact density.

    The toys are seeded, so the outcome is fixed; the check is the one the README
    table applies: the nominal coverage inside the 95% Clopper–Pearson interval.
    """
    from fedhex_hpc.studies.registry import KINDS
    from fedhex_hpc.studies.toys import plan_study
    from fedhex_hpc.studies.toys.collect import collect

    study = tmp_path / "study"
    plan_study(
        toys_spec(
            tmp_path,
            truths=[174.0],
            toys=120,
            block=120,
            events=300,
            fits={"exact": exact_spec(events=300.0)},
        ),
        study,
    )
    KINDS["toys"].run(study, 0, force=False)
    collect(study)
    (row,) = pd.read_csv(study / "summary.csv").to_dict("records")
    assert row["valid"] == 120
    for key in ("minos_68_ok", "minos_95_ok", "profile_68_ok", "profile_95_ok"):
        assert row[key], (key, row)
    assert 0.85 < row["pull_width"] < 1.15 and abs(row["pull_mean"]) < 0.25


def test_flow_fit_toys_compare_with_the_exact_fit(tmp_path, flow_run):
    from fedhex_hpc.studies.registry import KINDS
    from fedhex_hpc.studies.toys import plan_study
    from fedhex_hpc.studies.toys.collect import collect

    flow_fit = exact_spec()
    flow_fit["processes"]["peak"] = {**flow_fit["processes"]["peak"], "flow": str(flow_run)}
    del flow_fit["processes"]["peak"]["target"]
    study = tmp_path / "study"
    plan_study(
        toys_spec(
            tmp_path,
            truths=[171.0],
            toys=3,
            block=3,
            fits={"exact": exact_spec(), "flow": flow_fit},
        ),
        study,
    )
    KINDS["toys"].run(study, 0, force=False)
    text = collect(study)
    summary = pd.read_csv(study / "summary.csv")
    assert set(summary["fit"]) == {"exact", "flow"} and "vs ref" in text
    assert np.isfinite(summary.loc[summary["fit"] == "flow", "vs_reference_rms"]).all()


def test_toys_from_held_out_simulation_use_disjoint_rows(tmp_path):
    from fedhex_hpc.studies.registry import KINDS
    from fedhex_hpc.studies.toys import ToysFolder, plan_study

    x = np.concatenate([events(171.0, 1500, 13), events(177.0, 1500, 14)])
    truth = np.repeat([171.0, 177.0], 1500)
    write_events(tmp_path / "heldout.npz", x, mass_true=truth)
    spec = toys_spec(
        tmp_path,
        truths=[177.0],
        toys=4,
        block=2,
        events=300,
        poisson=False,
        generate={"file": "heldout.npz", "truth_column": "mass_true"},
    )
    study = tmp_path / "study"
    plan_study(spec, study)
    for task in (0, 1):
        KINDS["toys"].run(study, task, force=False)
    folder = ToysFolder(study)
    fits = [toy["fits"]["exact"] for t in (0, 1) for toy in folder.result(t)["toys"]]
    assert [f["events"] for f in fits] == [300] * 4
    assert len({round(f["value"], 9) for f in fits}) == 4  # four different event sets
    assert all(abs(f["value"] - 177.0) < 5 * f["error"] for f in fits)
    too_many = toys_spec(
        tmp_path,
        truths=[177.0],
        toys=6,
        block=6,
        events=300,
        poisson=False,
        generate={"file": "heldout.npz", "truth_column": "mass_true"},
    )
    plan_study(too_many, tmp_path / "study2")
    with pytest.raises(DataError, match="1500 rows"):
        KINDS["toys"].run(tmp_path / "study2", 0, force=False)


def test_a_study_with_an_untrained_flow_names_the_flows_command(tmp_path, capsys):
    spec = toys_spec(tmp_path, flows={"gauss": small_raw(data={"target": TARGET})})
    study = tmp_path / "study"
    assert main(["infer", "toys", "plan", str(spec), "-o", str(study)]) == 0
    assert main(["submit", str(study)]) == 2
    assert f"fedhex infer toys flows {study}" in capsys.readouterr().err


def test_bundled_toy_specs_load_with_their_small_variants():
    from fedhex_hpc.studies.toys.spec import flow_config, load_spec

    spec = load_spec("infer_gauss_exp_bkg", small=True)
    assert spec.truths == [171.0, 177.0] and flow_config(spec, "gauss").train.max_epochs == 3
    full = load_spec("infer_gauss_exp_bkg_exact")
    assert full.toys == 500 and full.truths == [168.0, 171.0, 174.0, 177.0]


def test_toys_as_a_slurm_job_array(slurm_cluster, tmp_path):
    from .test_slurm_jobs import submit_and_wait

    study = tmp_path / "study"
    spec = toys_spec(tmp_path, truths=[174.0], toys=4, block=2, events=300)
    run_cli("infer", "toys", "plan", str(spec), "-o", str(study))
    array_id = submit_and_wait(slurm_cluster, study)
    summary = pd.read_csv(study / "summary.csv")
    assert summary["valid"].tolist() == [4]
    assert len(list((study / "logs").glob(f"{array_id}_*.out"))) == 2


# --- scans as job arrays -------------------------------------------------------------
def scan_study(tmp_path: Path, points: int = 9) -> tuple[Path, Path, Path]:
    """A planned 1D mass scan of the exact model (norm profiled); study, spec and data."""
    spec = write_yaml(tmp_path / "model.yaml", exact_spec())
    data = write_events(tmp_path / "data.npz", events(174.0, 1000, 3))
    study = tmp_path / "scan"
    out = run_cli(
        "infer",
        "scan",
        str(spec),
        "--data",
        str(data),
        "--param",
        "mass",
        "--points",
        str(points),
        "--plan",
        str(study),
    ).stdout
    assert f"{points} tasks (one per grid point)" in out
    return study, spec, data


def test_scan_points_as_tasks_equal_the_direct_scan(tmp_path):
    study, spec, data = scan_study(tmp_path, points=5)
    collect = run_cli("collect", str(study), check=False)
    assert collect.returncode == 2 and "5 of 5 scan points have no result" in collect.stderr
    run_cli("submit", str(study), "--scheduler", "local", "--jobs", "2")  # collects at the end
    assert "done         5" in run_cli("status", str(study)).stdout
    table = pd.read_csv(study / "scan.csv")
    for suffix in ("png", "pdf"):
        assert (study / f"scan.{suffix}").is_file()
    direct = tmp_path / "direct.csv"
    run_cli(
        "infer",
        "scan",
        str(spec),
        "--data",
        str(data),
        "--param",
        "mass",
        "--points",
        "5",
        "-o",
        str(direct),
    )
    reference = pd.read_csv(direct)
    np.testing.assert_allclose(table["mass"], reference["mass"], rtol=1e-12)
    np.testing.assert_allclose(table["delta"], reference["delta"], atol=2e-3)
    assert table["valid"].all()
    summary = json.loads((study / "scan.json").read_text())["scan"]
    expected = json.loads(direct.with_suffix(".json").read_text())["scan"]
    for level in ("1sigma", "2sigma"):
        for side in ("lower", "upper"):
            got, want = summary["intervals"][level][side], expected["intervals"][level][side]
            assert np.isfinite(got) and abs(got - want) < 1e-3, (level, side)
    assert summary["minos"] == expected["minos"] and summary["minos"]["valid"]
    again = run_cli(
        "infer",
        "scan",
        str(spec),
        "--data",
        str(data),
        "--param",
        "mass",
        "--plan",
        str(study),
        check=False,
    )
    assert again.returncode == 2 and "holds a study already" in again.stderr


def test_scan_plan_of_an_unknown_parameter_is_one_line(tmp_path):
    spec = write_yaml(tmp_path / "model.yaml", exact_spec())
    data = write_events(tmp_path / "data.npz", events(174.0, 200, 3))
    result = run_cli(
        "infer",
        "scan",
        str(spec),
        "--data",
        str(data),
        "--param",
        "width",
        "--plan",
        str(tmp_path / "scan"),
        check=False,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "scan").exists()


def test_scan_points_as_a_slurm_job_array(slurm_cluster, tmp_path):
    from .test_slurm_jobs import submit_and_wait

    study, _, _ = scan_study(tmp_path, points=5)
    array_id = submit_and_wait(slurm_cluster, study)
    table = pd.read_csv(study / "scan.csv")
    assert len(table) == 5 and table["valid"].all()
    assert len(list((study / "logs").glob(f"{array_id}_*.out"))) == 5
    assert json.loads((study / "scan.json").read_text())["scan"]["intervals"]["1sigma"]
