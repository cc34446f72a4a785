"""Data-parallel glue: the only module that knows about Horovod.

The training loop calls these hooks whether or not it runs distributed; a single
process gets :class:`SingleProcess`, whose hooks do nothing. Under Horovod
(``srun --mpi=pmix``, ``mpirun -np N`` or ``horovodrun -np N``) :class:`Horovod`
pins one GPU per local rank, averages gradients with ``DistributedGradientTape``,
broadcasts rank 0's variables after the first step and sums epoch statistics
over ranks.
"""

from __future__ import annotations

from typing import Literal

from fedhex_hpc._tf import tf
from fedhex_hpc.data.batches import RankInfo
from fedhex_hpc.environment import JobEnvironment
from fedhex_hpc.errors import ConfigError

__all__ = ["Distributed", "Horovod", "SingleProcess", "launcher_size", "setup_distributed"]


def launcher_size() -> int:
    """Number of processes the MPI/Horovod launcher started (1 when not launched)."""
    return JobEnvironment.current().world_size


class Distributed:
    """Hooks the trainer calls; this base class is a single process."""

    ranks = RankInfo()
    local_rank = 0

    @property
    def is_root(self) -> bool:
        """Whether this process writes checkpoints, history and logs."""
        return self.ranks.rank == 0

    def wrap_tape(self, tape: tf.GradientTape) -> tf.GradientTape:
        """The gradient tape whose gradients are averaged over ranks."""
        return tape

    def after_first_step(self, variables: list[tf.Variable]) -> None:
        """Make every rank start from rank 0's variables."""

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over ranks."""
        return values

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank (all ranks get the same answer)."""
        return flag


class SingleProcess(Distributed):
    """One process: every hook is the identity."""


class Horovod(Distributed):
    """Horovod data parallelism over MPI (or Gloo) ranks."""

    def __init__(self) -> None:
        try:
            import horovod.tensorflow as hvd
        except ImportError as exc:
            raise ConfigError(
                f"train.distributed is 'horovod' but Horovod cannot be imported ({exc}); "
                "install it with `pip install .[hpc]` (see the README) or set "
                "train.distributed: none"
            ) from None
        hvd.init()
        self.hvd = hvd
        self.ranks = RankInfo(hvd.rank(), hvd.size())
        self.local_rank = hvd.local_rank()
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        if gpus:
            tf.config.set_visible_devices(gpus[self.local_rank % len(gpus)], "GPU")

    def wrap_tape(self, tape: tf.GradientTape) -> tf.GradientTape:
        """Average gradients over ranks (all-reduce) when they are taken."""
        return self.hvd.DistributedGradientTape(tape)

    def after_first_step(self, variables: list[tf.Variable]) -> None:
        """Broadcast rank 0's model and optimizer variables to every rank."""
        self.hvd.broadcast_variables(variables, root_rank=0)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over ranks."""
        total = self.hvd.allreduce(
            tf.constant(values, tf.float64), op=self.hvd.Sum, name="fedhex_sum"
        )
        return [float(v) for v in total.numpy()]

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is set on any rank."""
        return self.sum([1.0 if flag else 0.0])[0] > 0


def setup_distributed(mode: Literal["auto", "horovod", "none"]) -> Distributed:
    """The data-parallel hooks for ``train.distributed``.

    ``auto`` uses Horovod when a launcher started more than one process and a
    single process otherwise; ``horovod`` insists on it (also for one process).
    """
    if mode == "none":
        return SingleProcess()
    if mode == "horovod" or launcher_size() > 1:
        return Horovod()
    return SingleProcess()
