"""Multi-step studies: the layer above training, evaluation, data and the schedulers.

Every study lives in a folder with a ``study.json`` marker naming its kind (see
:mod:`fedhex_hpc.studies.base` for the files every kind shares), is planned by
its kind's own command, and then runs task by task — as a local process pool, a
Slurm job array or an HTCondor queue — and is collected into tables and plots
(:mod:`fedhex_hpc.studies.report`). :func:`open_study` finds a folder's kind.

Subpackages: ``steps`` (train, sample and evaluate one run), ``sweep`` and
``mixlearn`` (the kinds).
"""

from __future__ import annotations

from fedhex_hpc.studies.registry import KINDS, open_study

__all__ = ["KINDS", "open_study"]
