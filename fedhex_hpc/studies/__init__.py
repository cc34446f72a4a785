"""Multi-step studies: the layer above training, evaluation, data and the schedulers.

Every study lives in a folder with a ``study.json`` marker naming its kind (see
:mod:`fedhex_hpc.studies.base` for the files every kind shares), is planned by
its kind's own command, and then runs task by task — as a local process pool, a
Slurm job array or an HTCondor queue — and is collected into tables and plots
(:mod:`fedhex_hpc.studies.report`). :func:`fedhex_hpc.studies.registry.open_study`
finds a folder's kind; importing this package loads none of the kinds.

Subpackages: ``steps`` (train, sample and evaluate one run) and one per kind
(listed in :data:`fedhex_hpc.studies.registry.KINDS`).
"""
