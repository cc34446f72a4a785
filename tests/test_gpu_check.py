"""benchmarks/gpu_check.sh runs on a CPU with the tiny budget and prints its one table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_gpu_check_prints_one_table_on_a_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_BUDGET": "tiny"}
    proc = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", proc.stdout, re.MULTILINE))
    assert rows.pop("check") == "events/s"
    device = rows.pop("device")
    assert device.startswith("CPU: ") or "driver" in device
    assert "2 MADE blocks" in rows.pop("model")
    train = {k: v for k, v in rows.items() if k.startswith("train")}
    assert sorted(train) == sorted(
        f"train, batch {b:,}, XLA {x}" for b in (64, 256, 1024) for x in ("on", "off")
    )
    for key in [*train, "sample 2,000 events", "log-density 10,000 events"]:
        assert float(rows[key].replace(",", "")) > 0, key
    if device.startswith("CPU: "):
        assert rows["Horovod 2 ranks"] == "skipped: 0 GPU(s), needs 2"
    assert len([line for line in proc.stdout.splitlines() if line.startswith("|---")]) == 1
