"""Data-parallel training with PyTorch's DistributedDataParallel, launched by ``torchrun``.

:func:`fieldseg_core.train.train` calls into this module, so the same command
trains on one process or on many::

    python -m fieldseg_core.train --representation poisson --out runs/p          # one process
    python -m torch.distributed.run --nproc_per_node=2 -m fieldseg_core.train \\
        --representation poisson --out runs/p                                   # two processes

- :func:`launch_info` -- read the rank and world size that ``torchrun`` puts
  in the environment (a plain ``python`` launch is a world of one).
- :func:`backend_for` -- NCCL for CUDA devices, gloo for the CPU.
- :func:`rank_seed` -- distinct, reproducible seeds per rank (rank 0 keeps the run's seed).
- :func:`prepare_model` -- batch statistics shared across ranks, then DDP.
- :class:`DataParallelRun` -- everything :func:`~fieldseg_core.train.train`
  needs in one object: process group set-up and teardown, the rank's device,
  the model wrapper, a sharded loader, reduced statistics and the
  ``is_main`` flag that gates checkpoints, history and progress bars. When the
  process was not launched by ``torchrun`` it does nothing, so single-process
  training is unchanged bit for bit.

Normalisation layers: DDP averages gradients, so a step over ``W`` ranks of
``B`` images each equals one step over the union of the ``W * B`` images only
if every layer treats samples independently (GroupNorm, LayerNorm, a norm with
frozen statistics) or its batch statistics are synchronised. The default U-Net
trains its :class:`~fieldseg_core.models.TileSafeNorm` layers with batch
statistics, and they synchronise themselves across ranks on any backend
(``sync_statistics``: one differentiable all-reduce per layer, gloo on the CPU
too), so the step is the step over the union. Other ``BatchNorm*`` layers
become :class:`torch.nn.SyncBatchNorm` on CUDA; PyTorch implements that for
GPUs only, so on the CPU they keep per-rank statistics (a warning says so) and a
step equals the average of the ranks' separately normalised losses instead.

References
----------
.. [1] S. Li et al., "PyTorch Distributed: experiences on accelerating data
   parallel training", Proc. VLDB Endowment 13(12), 2020.
"""

from __future__ import annotations

import datetime
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import validate_number

__all__ = [
    "LaunchInfo",
    "launch_info",
    "backend_for",
    "rank_seed",
    "has_batchnorm",
    "synchronise_batchnorm",
    "prepare_model",
    "unwrap_model",
    "DataParallelRun",
]


@dataclass(frozen=True)
class LaunchInfo:
    """Where this process sits in a (possibly one-process) job.

    Attributes
    ----------
    rank : int
        Global rank, ``0 .. world_size - 1``.
    local_rank : int
        Rank on this node (selects the GPU).
    world_size : int
        Number of processes in the job.
    launched : bool
        True when the environment comes from ``torchrun`` (or any launcher that
        sets ``RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR``/``MASTER_PORT``).
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    launched: bool = False


def _env_int(env, key, default):
    value = env.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"environment variable {key} must be an integer, got {value!r}") from None


def launch_info(environ=None):
    """Read the launch from the environment variables that ``torchrun`` sets.

    Parameters
    ----------
    environ : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    info : LaunchInfo
        ``LaunchInfo(0, 0, 1, False)`` for a plain launch.

    Notes
    -----
    ``torchrun`` (``python -m torch.distributed.run``) exports ``RANK``,
    ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` to every
    process it starts; the ``env://`` rendezvous of
    :func:`torch.distributed.init_process_group` reads the same variables.

    Examples
    --------
    >>> launch_info({})
    LaunchInfo(rank=0, local_rank=0, world_size=1, launched=False)
    >>> env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4",
    ...        "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    >>> launch_info(env)
    LaunchInfo(rank=3, local_rank=1, world_size=4, launched=True)
    """
    env = os.environ if environ is None else environ
    if not all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return LaunchInfo()
    rank = _env_int(env, "RANK", 0)
    world_size = _env_int(env, "WORLD_SIZE", 1)
    local_rank = _env_int(env, "LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(f"inconsistent launch environment: RANK={rank}, "
                         f"LOCAL_RANK={local_rank}, WORLD_SIZE={world_size}")
    return LaunchInfo(rank, local_rank, world_size, True)


def backend_for(device):
    """The collective-communication backend for a device type.

    Parameters
    ----------
    device : str or torch.device

    Returns
    -------
    backend : {"nccl", "gloo"}
        NCCL for CUDA (GPU-to-GPU over NVLink or InfiniBand), gloo otherwise.

    Examples
    --------
    >>> backend_for("cpu"), backend_for("cuda:1")
    ('gloo', 'nccl')
    """
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def rank_seed(seed, rank):
    """A reproducible seed per rank, distinct across ranks; rank 0 keeps ``seed``.

    Parameters
    ----------
    seed : int
        The run's seed, ``>= 0``.
    rank : int
        Global rank, ``>= 0``.

    Returns
    -------
    seed : int
        ``seed`` itself for rank 0 (a one-process run is unchanged), otherwise
        a 31-bit integer drawn from ``SeedSequence([seed, rank])``.

    Examples
    --------
    >>> rank_seed(7, 0)
    7
    >>> rank_seed(7, 1) == rank_seed(7, 1) != rank_seed(7, 2)
    True
    """
    seed = validate_number(seed, "seed", low=0, integer=True)
    rank = validate_number(rank, "rank", low=0, integer=True)
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0] >> 1)


def _uses_batch_statistics(module):
    # Frozen statistics treat every sample alike, and TileSafeNorm synchronises
    # its own statistics (sync_statistics): neither needs SyncBatchNorm.
    from .models import TileSafeNorm

    return (isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
            and not isinstance(module, (torch.nn.SyncBatchNorm, TileSafeNorm)))


def has_batchnorm(model):
    """Whether a model has ``BatchNorm*`` layers that need SyncBatchNorm to share statistics.

    :class:`~fieldseg_core.models.TileSafeNorm` layers (the package's U-Nets)
    do not count: they synchronise their own statistics, or are frozen.

    Examples
    --------
    >>> from fieldseg_core.models import build_model
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    >>> has_batchnorm(net), has_batchnorm(build_model("edt", widths=(4, 8)))
    (True, False)
    """
    return any(_uses_batch_statistics(m) for m in model.modules())


def _convert_batchnorm(module):
    if _uses_batch_statistics(module):
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        setattr(module, name, _convert_batchnorm(child))
    return module


def synchronise_batchnorm(model, device):
    """Share batch statistics across ranks: TileSafeNorm on any device, SyncBatchNorm on CUDA.

    Parameters
    ----------
    model : torch.nn.Module
    device : str or torch.device
        The device the model trains on.

    Returns
    -------
    model : torch.nn.Module
        ``model`` with ``sync_statistics`` set on its
        :class:`~fieldseg_core.models.TileSafeNorm` layers (they all-reduce
        their batch statistics in training, on any backend). Other
        ``BatchNorm*`` layers are replaced on CUDA by
        :class:`torch.nn.SyncBatchNorm` layers holding the same parameters and
        running statistics (in place, except when ``model`` itself is such a
        layer; the ``state_dict`` still loads into a freshly built model). On
        the CPU they stay, with a :class:`UserWarning`: PyTorch implements
        SyncBatchNorm for GPUs only, so each rank normalises them with its own
        batch statistics.

    Examples
    --------
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    >>> type(synchronise_batchnorm(net, "cuda")[1]).__name__
    'SyncBatchNorm'
    """
    from .models import TileSafeNorm

    device = torch.device(device)
    for module in model.modules():
        if isinstance(module, TileSafeNorm):
            module.sync_statistics = True          # synchronises itself, on any backend
    if not has_batchnorm(model):
        return model
    if device.type == "cuda":
        return _convert_batchnorm(model)
    warnings.warn("BatchNorm layers keep per-rank batch statistics on the CPU "
                  "(PyTorch's SyncBatchNorm needs a GPU): a data-parallel step is then not "
                  "the step over the union of the ranks' batches", stacklevel=2)
    return model


def prepare_model(model, device, world_size=None):
    """Wrap a model for data-parallel training.

    Parameters
    ----------
    model : torch.nn.Module
        Already on ``device``.
    device : str or torch.device
        The rank's device.
    world_size : int, optional
        Default: the initialised process group's size. With one process the
        model is returned as is.

    Returns
    -------
    model : torch.nn.Module
        A :class:`~torch.nn.parallel.DistributedDataParallel` wrapper (its
        ``.module`` is ``model``, its batch statistics shared across ranks by
        :func:`synchronise_batchnorm`), or ``model`` itself.

    Notes
    -----
    At construction DDP broadcasts rank 0's parameters and buffers, so every
    rank starts from the same weights; each backward then all-reduces (averages)
    the gradients in buckets while the backward pass runs [1]_.
    """
    device = torch.device(device)
    if world_size is None:
        world_size = (torch.distributed.get_world_size()
                      if torch.distributed.is_initialized() else 1)
    if world_size <= 1:
        return model
    model = synchronise_batchnorm(model, device)
    device_ids = [device.index if device.index is not None else 0] \
        if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model):
    """The module inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class DataParallelRun:
    """Data-parallel context of one training run; inert when not launched by ``torchrun``.

    Parameters
    ----------
    device : torch.device
        The requested device. Under ``torchrun`` a CUDA device becomes
        ``cuda:LOCAL_RANK`` (one GPU per process).
    environ : mapping, optional
        Default ``os.environ`` (see :func:`launch_info`).
    timeout_s : float
        How long collectives wait for a missing rank before failing.

    Attributes
    ----------
    active : bool
        More than one process: gradients are averaged across ranks.
    rank, world_size : int
    device : torch.device
    is_main : bool
        Rank 0: the process that writes checkpoints and history and shows progress.

    Notes
    -----
    When active and no process group exists yet, the constructor initialises
    one (``env://`` rendezvous; backend from :func:`backend_for`) and
    :meth:`close` destroys it again; a group created by the caller is used and
    left alone. Every rank reads a disjoint shard of the dataset per epoch
    (:class:`~torch.utils.data.distributed.DistributedSampler` seeded by the
    run's seed and the epoch), so the ranks draw different, reproducible
    synthetic samples, and an epoch still covers the dataset once.

    Examples
    --------
    >>> run = DataParallelRun(torch.device("cpu"), environ={})
    >>> run.active, run.is_main, run.world_size, run.rank_seed(5)
    (False, True, 1, 5)
    """

    def __init__(self, device, environ=None, timeout_s=1800.0):
        info = launch_info(environ)
        dist = torch.distributed
        self.device = torch.device(device)
        self._owns_group = False
        if info.world_size > 1 and not dist.is_available():
            raise RuntimeError("torch.distributed is not available in this build of PyTorch")
        if info.world_size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", info.local_rank)
            torch.cuda.set_device(self.device)
        if info.world_size > 1 and not dist.is_initialized():
            dist.init_process_group(backend=backend_for(self.device), init_method="env://",
                                    timeout=datetime.timedelta(seconds=timeout_s))
            self._owns_group = True
        self.active = info.world_size > 1
        self.rank = dist.get_rank() if self.active else 0
        self.world_size = dist.get_world_size() if self.active else 1
        self.is_main = self.rank == 0

    def rank_seed(self, seed):
        """This rank's seed (:func:`rank_seed`)."""
        return rank_seed(seed, self.rank)

    def wrap(self, model):
        """The model to call in the training loop (:func:`prepare_model`)."""
        return prepare_model(model, self.device, self.world_size) if self.active else model

    def shard_size(self, n_items):
        """Items one rank reads per epoch (the sampler pads to equal shards)."""
        return math.ceil(n_items / self.world_size)

    def loader(self, dataset, batch_size, seed, epoch, num_workers=0, pin_memory=False):
        """A DataLoader over this rank's shard of ``dataset`` for one epoch."""
        sampler = torch.utils.data.distributed.DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                           num_workers=num_workers, pin_memory=pin_memory)

    def reduce_sum(self, *values):
        """Sums over ranks of scalar tensors or numbers, as floats (identity when inactive)."""
        if not self.active:
            return tuple(float(v) for v in values)
        t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                         device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(t)
        return tuple(float(v) for v in t.cpu())

    def barrier(self):
        """Wait for every rank (no-op when inactive)."""
        if self.active:
            torch.distributed.barrier()

    def close(self):
        """Destroy the process group if this object created it."""
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.barrier()  # rank 0 may still be writing the last checkpoint
            torch.distributed.destroy_process_group()
            self._owns_group = False
