"""Export a flow as a TensorFlow SavedModel that loads without this package.

The folder loads with ``tf.saved_model.load(path)`` in any TensorFlow 2 process
(tf-keras or Keras 3 alike: it holds only variables and TensorFlow graphs):

* ``loaded.log_prob(x, cond)`` takes float32 events ``x`` (n, d) and conditions
  ``cond`` (n, c) in data space and returns the log densities (n,);
* ``loaded.sample(n, cond, seed)`` draws ``n`` events (n, d) for the int32
  scalar ``n``, one condition row per event and the stateless int32 seed of
  shape [2].

An unconditional flow has no ``cond`` argument: ``log_prob(x)`` and
``sample(n, seed)``. The same functions are the SavedModel signatures
``log_prob`` and ``sample`` (output key ``output_0``) for serving tools. The
folder also holds ``spec.json`` (as in a saved flow), which names the feature
and condition columns in order.
"""

from __future__ import annotations

from pathlib import Path

from fedhex_hpc._tf import tf
from fedhex_hpc.flows.io import SPEC_FILE, write_spec
from fedhex_hpc.flows.maf import FlowModel
from fedhex_hpc.io_utils import atomic_directory

__all__ = ["export_saved_model"]


class _Exported(tf.Module):
    """The flow's variables and its compiled log-density and sampler, nothing else."""

    def __init__(self, model: FlowModel) -> None:
        super().__init__(name="fedhex_flow")
        self.flow_variables = list(model.variables)  # saved with the functions that read them
        self.log_prob = model.compiled_log_prob
        self.sample = model.compiled_sample


def export_saved_model(model: FlowModel, out: str | Path) -> Path:
    """Write ``model`` as a TensorFlow SavedModel folder ``out`` atomically.

    Args:
        model: The flow to export.
        out: The folder to write (replaced if it exists).

    Returns:
        ``out``.
    """
    out = Path(out)
    exported = _Exported(model)
    signatures = {
        "log_prob": exported.log_prob.get_concrete_function(),
        "sample": exported.sample.get_concrete_function(),
    }
    with atomic_directory(out) as tmp:
        tf.saved_model.save(exported, str(tmp), signatures=signatures)
        write_spec(model.spec, tmp / SPEC_FILE)
    return out
