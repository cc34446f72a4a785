"""Mixlearn: do classifiers trained on a mix of genuine and flow-generated events do as
well as classifiers trained on genuine events alone?

One MAF learns the genuine signal and one the genuine background (noise) training
events of a labelled dataset; classifiers then train on every mix of genuine and
synthetic counts in a grid, several times each, and are tested on the genuine
test split. See :mod:`fedhex_hpc.studies.mixlearn.plan` for the plan's columns.
"""

from __future__ import annotations

from fedhex_hpc.studies.mixlearn.collect import collect
from fedhex_hpc.studies.mixlearn.plan import PLAN_COLUMNS
from fedhex_hpc.studies.mixlearn.spec import MixlearnSpec, load_spec
from fedhex_hpc.studies.mixlearn.study import plan_study, run_flows, run_row

__all__ = [
    "PLAN_COLUMNS",
    "MixlearnSpec",
    "collect",
    "load_spec",
    "plan_study",
    "run_flows",
    "run_row",
]
