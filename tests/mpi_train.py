"""Run under an MPI launcher by tests/test_mpi.py: train, then save this rank's variables.

mpirun -np 2 python tests/mpi_train.py CONFIG.yaml RUN_DIR OUT_PREFIX
"""

from __future__ import annotations

import sys

import numpy as np

from fedhex_hpc.config import load_config
from fedhex_hpc.data.training import load_training_data
from fedhex_hpc.runs import RunDir
from fedhex_hpc.studies.steps import new_flow
from fedhex_hpc.train import Trainer
from fedhex_hpc.train.distributed import setup_distributed


def main() -> None:
    """Train the config on every rank and write OUT_PREFIX-rank<r>.npz."""
    config_path, run_dir, out = sys.argv[1:4]
    config = load_config(config_path)
    dist = setup_distributed(config.train.distributed)
    if dist.is_root:
        RunDir.create(run_dir, config)
    dist.sum([0.0])
    data = load_training_data(
        config.data, config.run.seed, config.train.batch_size, ranks=dist.ranks
    )
    trainer = Trainer(new_flow(config, data), config, data, RunDir.open(run_dir), dist=dist)
    trainer.fit()
    np.savez(f"{out}-rank{dist.ranks.rank}.npz", *[v.numpy() for v in trainer.model.variables])


if __name__ == "__main__":
    main()
