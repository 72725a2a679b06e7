"""Distributed data parallel training under ``torchrun``.

``torchrun`` (or a PyTorchJob / TrainJob, which run it) sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; :func:`init_distributed` reads them and joins the process group with the
``nccl`` backend on CUDA and ``gloo`` on CPU. Without them the trainer runs as one process.

Batches are sharded so that distributed training computes the same updates as one process:
every rank draws the same global permutation for an epoch, cuts it into global batches of
``batch_size`` rows, and takes every ``world_size``-th row of each global batch (the
interleaving ``DistributedSampler`` gives, without its padding, which would repeat rows).
Each rank's loss is its sum over its rows times ``world_size / global_batch_rows``, so the
gradient DDP averages over ranks is the mean gradient of the whole global batch, also for a
short last batch. What remains different is the order of floating-point sums (and, with
dropout, which random masks each row gets).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_kit._lazy import require
from mlops_kit.training.errors import TrainingError

torch = require("torch", "training")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 on a single process).
        local_rank: rank on this node (selects the GPU).
        world_size: number of processes.
        backend: ``gloo``, ``nccl`` or None when not distributed.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes checkpoints (rank 0)."""
        return self.rank == 0


def env_context() -> DistContext:
    """The ranks ``torchrun`` put in the environment (single process when absent).

    Raises:
        TrainingError: the variables are inconsistent.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise TrainingError(f"RANK / LOCAL_RANK / WORLD_SIZE must be integers: {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise TrainingError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return DistContext(rank=rank, local_rank=local, world_size=world)


def init_distributed(device_type: str, timeout_s: float = 600.0) -> DistContext:
    """Join the process group when launched by ``torchrun`` with more than one process.

    Args:
        device_type: ``cuda`` selects ``nccl`` and this rank's GPU; ``cpu`` selects ``gloo``.
        timeout_s: how long collectives wait for the other ranks.
    """
    ctx = env_context()
    if not ctx.is_distributed:
        return ctx
    dist = torch.distributed
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(seconds=timeout_s))
    return DistContext(ctx.rank, ctx.local_rank, ctx.world_size, dist.get_backend())


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op on a single process)."""
    if ctx.is_distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        torch.distributed.barrier()


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The global shuffle of ``n`` rows for an epoch; identical on every rank and on resume."""
    return np.random.default_rng([seed, epoch]).permutation(n)


@dataclass(frozen=True)
class EpochShard:
    """This rank's rows of an epoch, in batch order.

    Attributes:
        order: row indices of this rank, batch after batch.
        bounds: ``order[bounds[k]:bounds[k + 1]]`` are the rows of batch ``k``.
        global_rows: rows of global batch ``k`` over all ranks.
        loss_scale: ``world_size / global_rows``: the factor of this rank's summed loss of
            batch ``k``, so that the gradient DDP averages over ranks is the mean over the
            global batch.
    """

    order: np.ndarray
    bounds: np.ndarray
    global_rows: np.ndarray
    loss_scale: np.ndarray

    @property
    def n_batches(self) -> int:
        return int(self.global_rows.size)


def shard_epoch(perm: np.ndarray, batch_size: int, rank: int, world_size: int) -> EpochShard:
    """Cut ``perm`` into global batches and keep this rank's interleaved share of each."""
    n = perm.size
    n_batches = -(-n // batch_size)
    position = np.arange(n)
    batch = position // batch_size
    global_rows = np.bincount(batch, minlength=n_batches)
    mine = (
        np.ones(n, dtype=bool) if world_size == 1 else (position % batch_size) % world_size == rank
    )
    local_rows = np.bincount(batch[mine], minlength=n_batches)
    bounds = np.concatenate([[0], np.cumsum(local_rows)])
    return EpochShard(
        order=perm[mine],
        bounds=bounds,
        global_rows=global_rows,
        loss_scale=world_size / global_rows,
    )


def all_gather_rows(tensor: Any, ctx: DistContext) -> Any:
    """Concatenate every rank's rows (rank order); ranks may hold different row counts."""
    if not ctx.is_distributed:
        return tensor
    dist = torch.distributed
    n = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.int64)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts, strict=True)])


def all_reduce_sum(tensor: Any, ctx: DistContext) -> Any:
    """Sum a tensor over ranks (in place; returned for convenience)."""
    if ctx.is_distributed:
        torch.distributed.all_reduce(tensor)
    return tensor


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` (pickled), in rank order."""
    if not ctx.is_distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def wrap_ddp(model: Any, ctx: DistContext, device: Any) -> Any:
    """Wrap ``model`` in DistributedDataParallel when distributed (else return it)."""
    if not ctx.is_distributed:
        return model
    ddp = torch.nn.parallel.DistributedDataParallel
    if device.type == "cuda":
        return ddp(model, device_ids=[device.index], output_device=device.index)
    return ddp(model)


__all__ = [
    "DistContext",
    "EpochShard",
    "all_gather_rows",
    "all_reduce_sum",
    "barrier",
    "env_context",
    "epoch_permutation",
    "gather_objects",
    "init_distributed",
    "shard_epoch",
    "shutdown",
    "wrap_ddp",
]
