"""The ``lhco_anomaly`` study kind: CATHODE, ANODE and their baselines on the LHC Olympics
R&D layout, judged by SIC curves with closure and sculpting checks.

Modules: :mod:`.spec` (the YAML spec), :mod:`.folder` (plan and folder layout),
:mod:`.shared` (per (seed, n_signal) steps built once: prepare, flows, template),
:mod:`.task` (one task: classes, classifier, scores, figures), :mod:`.collect`
(tables and plots), :mod:`.kind` (what the registry sees).
"""

from fedhex_hpc.studies.lhco_anomaly.folder import LhcoFolder, plan_study
from fedhex_hpc.studies.lhco_anomaly.kind import LhcoAnomalyKind

__all__ = ["LhcoAnomalyKind", "LhcoFolder", "plan_study"]
