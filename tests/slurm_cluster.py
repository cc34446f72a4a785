"""A real single-node Slurm cluster (munged + slurmctld + slurmd) for tests.

The session-scoped ``slurm_cluster`` fixture writes a ``slurm.conf`` into a
temporary directory, starts the daemons on loopback with free non-default
ports, and yields a :class:`SlurmCluster` with helpers to submit jobs and wait
for them. The node advertises 8 CPUs regardless of the hardware
(``SlurmdParameters=config_overrides``) so that 8-task job arrays run
concurrently on small machines. There is no slurmdbd: finished jobs stay
visible to ``scontrol show job`` for ``MinJobAge`` (one hour) and are also
recorded in ``<tmp>/jobcomp.txt``.

Needs root and the Debian packages slurmctld, slurmd, slurm-client, munge
(and openmpi-bin + libpmix for ``srun --mpi=pmix``). Without them the fixture
skips, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ci import require

SBIN_PATH = os.pathsep.join(("/usr/local/sbin", "/usr/sbin", "/sbin"))
REQUIRED_COMMANDS = (
    "slurmctld",
    "slurmd",
    "munged",
    "munge",
    "unmunge",
    "sbatch",
    "srun",
    "squeue",
    "scontrol",
    "scancel",
    "sinfo",
)
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")
FIRST_PORT = 16817
NODE_CPUS = 8
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
# Variables that would make Slurm commands think they run inside another job.
INHERITED_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")


def find_command(name: str) -> str | None:
    """Locate ``name`` on PATH or in the sbin directories."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)


@dataclass
class SlurmCluster:
    """A running test cluster and helpers to drive it."""

    conf: Path
    env: dict[str, str]
    tmp: Path

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Run a Slurm command with the cluster's environment and capture its output."""
        result = subprocess.run(
            list(args), env=self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed with exit code {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def sbatch(
        self,
        script: Path | str,
        *args: str,
        cwd: Path | None = None,
        env_extra: dict[str, str] | None = None,
    ) -> int:
        """Submit a batch script and return its job id.

        ``args`` are extra sbatch options (placed before the script). The job's
        working directory defaults to the script's directory, so default
        ``slurm-%j.out`` files land next to the script.
        """
        script = Path(script).resolve()
        result = subprocess.run(
            ["sbatch", "--parsable", *args, str(script)],
            env={**self.env, **(env_extra or {})},
            cwd=cwd or script.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"sbatch {script} failed:\n{result.stdout}\n{result.stderr}")
        return int(result.stdout.strip().split(";")[0])

    def records(self, job_id: int) -> list[dict[str, str]]:
        """``scontrol show job`` records of a job (one per array element or group)."""
        output = self.run("scontrol", "show", "job", "-o", str(job_id)).stdout
        return [_parse_record(line) for line in output.splitlines() if line.strip()]

    def job_state(self, job_id: int) -> str:
        """State of a job; for an array, a pending/running state wins, then any failure."""
        states = [record["JobState"] for record in self.records(job_id)]
        active = [state for state in states if state not in TERMINAL_STATES]
        failed = [state for state in states if state != "COMPLETED"]
        return (active or failed or states)[0]

    def job_field(self, job_id: int, name: str) -> str:
        """One ``scontrol show job`` field (e.g. ``Restarts``, ``ExitCode``) of a job.

        For an array job this is the field of the first record.
        """
        return self.records(job_id)[0][name]

    def wait(self, job_id: int, timeout: float = 600) -> str:
        """Wait until a job (or every element of an array job) has finished; return its state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_state(job_id)
            if state in TERMINAL_STATES:
                queued = self.run("squeue", "-h", "-j", str(job_id), check=False).stdout
                if not queued.strip():
                    return state
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {state} after {timeout} s\n"
                    + "\n".join(str(record) for record in self.records(job_id))
                    + "\n"
                    + log_tails(self.tmp / "log")
                )
            time.sleep(1)


def _parse_record(line: str) -> dict[str, str]:
    """Parse one ``scontrol -o`` line of ``Key=Value`` pairs (values may contain spaces)."""
    record: dict[str, str] = {}
    key = None
    for token in line.split():
        name, sep, value = token.partition("=")
        if sep and name:
            key = name
            record[key] = value
        elif key is not None:
            record[key] += " " + token
    return record


def log_tails(log_dir: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of every file in ``log_dir``, for error messages."""
    parts = []
    for path in sorted(log_dir.iterdir()) if log_dir.is_dir() else []:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"==> {path} <==\n" + "\n".join(tail))
    return "\n".join(parts)


def _port_free(port: int) -> bool:
    """Whether a TCP port can be bound on all interfaces (as Slurm does, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port_pair(first: int = FIRST_PORT) -> int:
    """The lowest port ``p >= first`` such that ``p`` and ``p + 1`` are free."""
    for port in range(first, first + 1000):
        if _port_free(port) and _port_free(port + 1):
            return port
    raise RuntimeError(f"no two consecutive free ports in {first}..{first + 1000}")


def munge_works() -> bool:
    """Whether a munged is running: a credential round-trips through munge/unmunge."""
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, text=True, timeout=10)
        if cred.returncode != 0:
            return False
        check = subprocess.run(
            ["unmunge"], input=cred.stdout, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def ensure_munge_key(path: Path, user: str = "munge") -> None:
    """Create a random munge key at ``path`` (mode 0400, owned by ``user``) if missing."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.chown(path.parent, user, user)
    mungekey = find_command("mungekey")
    if mungekey:
        subprocess.run([mungekey, "--create", f"--keyfile={path}"], check=True, timeout=60)
    else:
        path.write_bytes(os.urandom(1024))
    path.chmod(0o400)
    shutil.chown(path, user, user)


@contextlib.contextmanager
def _munged(log_dir: Path) -> Iterator[None]:
    """Make munged available, starting it as the munge user unless one already runs."""
    if munge_works():
        yield
        return
    ensure_munge_key(MUNGE_KEY)
    MUNGE_RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
    # As root, munged refuses the munge-owned /var/log/munge; as "munge" it is happy.
    with open(log_dir / "munged.out", "w") as log:
        proc = subprocess.Popen(
            [find_command("munged") or "munged", "--foreground"],
            user="munge",
            group="munge",
            extra_groups=[],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not munge_works():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("munged did not start\n" + log_tails(log_dir))
            time.sleep(0.2)
        yield
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM a daemon, then SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def _real_memory_mib() -> int:
    """A RealMemory value that is safely below the machine's memory."""
    total_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return max(256, min(4096, total_kib // 1024 // 2))


def write_conf(tmp: Path, node: str, port: int) -> Path:
    """Write ``slurm.conf`` (and its directories) for a one-node cluster under ``tmp``."""
    for name in ("state", "spool", "log"):
        (tmp / name).mkdir(exist_ok=True)
    settings = {
        "ClusterName": "fedhextest",
        "SlurmctldHost": f"{node}(127.0.0.1)",
        "SlurmctldPort": port,
        "SlurmdPort": port + 1,
        "SlurmUser": "root",
        "SlurmdUser": "root",
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
        # Requeued jobs become eligible again after cred_expire + 1 s (default 120).
        "AuthInfo": "cred_expire=10",
        "MailProg": "/bin/true",
        "StateSaveLocation": tmp / "state",
        "SlurmdSpoolDir": tmp / "spool",
        "SlurmctldPidFile": tmp / "slurmctld.pid",
        "SlurmdPidFile": tmp / "slurmd.pid",
        "SlurmctldLogFile": tmp / "log" / "slurmctld.log",
        "SlurmdLogFile": tmp / "log" / "slurmd.log",
        "SlurmctldDebug": "info",
        "SlurmdDebug": "info",
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        # Start pending (e.g. requeued) jobs within seconds, not the default 30-60 s.
        "SchedulerParameters": "sched_interval=2,bf_interval=2",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_CPU",
        "MpiDefault": "none",
        "JobRequeue": 1,
        "ReturnToService": 2,
        "KillWait": 5,
        "MinJobAge": 3600,
        "MessageTimeout": 30,
        "JobCompType": "jobcomp/filetxt",
        "JobCompLoc": tmp / "jobcomp.txt",
        "AccountingStorageType": "accounting_storage/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "SlurmdParameters": "config_overrides",
    }
    lines = [f"{key}={value}" for key, value in settings.items()]
    lines += [
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} "
        f"RealMemory={_real_memory_mib()} State=UNKNOWN",
        f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP",
    ]
    conf = tmp / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@contextlib.contextmanager
def _daemon(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run a foreground daemon with output to ``log``; stop it on exit."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        _stop(proc)


def _wait_idle(cluster: SlurmCluster, daemons: list[subprocess.Popen], timeout: float) -> None:
    """Wait until the node is idle, failing early if a daemon exits."""
    deadline = time.monotonic() + timeout
    while True:
        state = cluster.run("sinfo", "-h", "-o", "%T", check=False, timeout=60).stdout.strip()
        if state == "idle":
            return
        dead = [proc.args[0] for proc in daemons if proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            reason = f"{', '.join(dead)} exited" if dead else f"node still {state!r}"
            raise RuntimeError(
                f"Slurm cluster did not become idle ({reason})\n" + log_tails(cluster.tmp / "log")
            )
        time.sleep(0.5)


def _cancel_all(cluster: SlurmCluster, timeout: float = 60) -> None:
    """Cancel every job and wait (bounded) for the queue to drain."""
    user = pwd.getpwuid(os.getuid()).pw_name
    cluster.run("scancel", f"--user={user}", check=False, timeout=60)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = cluster.run("squeue", "-h", check=False, timeout=60)
        if queue.returncode != 0 or not queue.stdout.strip():
            return
        time.sleep(0.5)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running single-node Slurm cluster (8 CPUs, partition ``debug``) for the session."""
    require(os.geteuid() == 0, "root (to run slurmd and munged)")
    for name in REQUIRED_COMMANDS:
        require(find_command(name) is not None, f"{name} (Debian slurm-wlm/munge)")
    try:
        pwd.getpwnam("munge")
    except KeyError:
        require(False, "the munge user (Debian munge package)")

    tmp = tmp_path_factory.mktemp("slurm")
    node = socket.gethostname().split(".")[0]
    conf = write_conf(tmp, node, free_port_pair())
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES)}
    env["SLURM_CONF"] = str(conf)
    cluster = SlurmCluster(conf=conf, env=env, tmp=tmp)
    log_dir = tmp / "log"

    with contextlib.ExitStack() as stack:
        stack.enter_context(_munged(log_dir))
        ctld = stack.enter_context(
            _daemon(
                [find_command("slurmctld") or "slurmctld", "-D", "-f", str(conf)],
                env,
                log_dir / "slurmctld.out",
            )
        )
        slurmd = stack.enter_context(
            _daemon(
                [find_command("slurmd") or "slurmd", "-D", "-f", str(conf), "-N", node],
                env,
                log_dir / "slurmd.out",
            )
        )
        stack.callback(_cancel_all, cluster)
        _wait_idle(cluster, [ctld, slurmd], timeout=90)
        yield cluster
