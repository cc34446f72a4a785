"""SavedModel export: loads and evaluates in a process that never imports fedhex_hpc."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from fedhex_hpc.flows import export_saved_model

from .flow_factory import make_flow, randomise

#: What a user does: plain TensorFlow, no fedhex_hpc, no tf-keras switch.
LOADER = """
import json, sys
import numpy as np
import tensorflow as tf

for case in json.loads(sys.argv[1]):
    flow = tf.saved_model.load(case["path"])
    x = np.load(case["x"])
    seed = tf.constant([11, 0], tf.int32)
    if case["cond"] is None:
        log_prob = flow.log_prob(x)
        sample = flow.sample(tf.constant(len(x), tf.int32), seed)
        served = flow.signatures["log_prob"](x=tf.constant(x))["output_0"]
    else:
        cond = np.load(case["cond"])
        log_prob = flow.log_prob(x, cond)
        sample = flow.sample(tf.constant(len(x), tf.int32), cond, seed)
        served = flow.signatures["log_prob"](x=tf.constant(x), cond=tf.constant(cond))["output_0"]
    np.save(case["path"] + "-log_prob.npy", log_prob.numpy())
    np.save(case["path"] + "-served.npy", served.numpy())
    np.save(case["path"] + "-sample.npy", sample.numpy())
assert "fedhex_hpc" not in sys.modules, "the loader imported fedhex_hpc"
print("ok")
"""


def test_exported_flow_loads_without_the_package_and_gives_the_same_density(tmp_path):
    cases, models = [], []
    for n_conditions in (1, 0):
        model, x, c = make_flow("logit", n_conditions, batch_norm=True)
        randomise(model)
        path = tmp_path / f"flow-{n_conditions}"
        assert export_saved_model(model, path) == path
        np.save(tmp_path / f"x-{n_conditions}.npy", x[:100])
        if c is not None:
            np.save(tmp_path / f"c-{n_conditions}.npy", c[:100])
        cond = None if c is None else str(tmp_path / f"c-{n_conditions}.npy")
        cases.append(
            {"path": str(path), "x": str(tmp_path / f"x-{n_conditions}.npy"), "cond": cond}
        )
        models.append((model, x[:100], None if c is None else c[:100]))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(cases)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    for case, (model, x, c) in zip(cases, models, strict=True):
        expected = model.log_prob_batched(x, c)
        for what in ("log_prob", "served"):
            got = np.load(case["path"] + f"-{what}.npy")
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        sample = np.load(case["path"] + "-sample.npy")
        np.testing.assert_allclose(
            sample, model.sample_batched(len(x), c, seed=11), rtol=1e-5, atol=1e-5
        )
        spec = json.loads((tmp_path / case["path"] / "spec.json").read_text())
        assert spec["n_conditions"] == model.spec.n_conditions
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind
