"""Data: from input files to the batches training reads, in three layers.

Each layer uses only the layers above it.

* Acquisition, getting and reading inputs: :mod:`.fetch` downloads public data
  sets; :mod:`.sources` reads the input formats (LHCO, MiniBooNE, ROOT trees,
  named columns) as independently readable partitions; :mod:`.columns` reads
  named columns of numpy and HDF5 files; :mod:`.synthetic` writes generated
  files in the public layouts, for tests and benchmarks.
* Store, dataset folders: :mod:`.convert` turns a source into shards with Dask
  (:mod:`.cluster` starts the cluster, :mod:`.dask_logs` keeps its log records
  in the dataset folder); :mod:`.shards` writes shard files and column
  statistics, :mod:`.manifest` the manifest; :mod:`.inspect` describes and
  verifies a dataset; :mod:`.weak_supervision` writes the LHCO weak-supervision
  splits (signal injection, CATHODE's splits) as datasets.
* Loader, training input: :mod:`.arrays` holds in-memory splits of a known
  target or a column file; :mod:`.dataset` reads a dataset folder (event
  selection, splits in memory, a stream over shards); :mod:`.batches` gives
  batches of either to each rank; :mod:`.training` assembles what one training
  process needs.
"""

from __future__ import annotations

from fedhex_hpc.data.arrays import Arrays, Splits, check_finite, load_splits
from fedhex_hpc.data.columns import read_columns

__all__ = ["Arrays", "Splits", "check_finite", "load_splits", "read_columns"]
