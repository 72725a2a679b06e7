"""Where a run computes: seeds, this process's torch device and precision, and the feeder.

:func:`resolve_device` and :func:`resolve_precision` turn the config's ``device`` and
``precision`` (``auto`` included) into what this process uses; :class:`BatchFeeder` lays
the training rows out on that device, one gather per epoch.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from mlops_kit._lazy import require
from mlops_kit.training.config import TrainConfig
from mlops_kit.training.distributed import DistContext
from mlops_kit.training.errors import TrainingError

torch = require("torch", "training")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(config: TrainConfig, ctx: DistContext | None = None) -> Any:
    """The torch device of this process.

    Raises:
        TrainingError: ``device: cuda`` without a usable CUDA GPU.
    """
    want = config.device
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingError(
                "device 'cuda' was requested but torch.cuda.is_available() is False: install a "
                "CUDA build of torch and run on a GPU node, or set device: cpu"
            )
        index = ctx.local_rank if ctx is not None and ctx.is_distributed else 0
        return torch.device("cuda", index)
    return torch.device("cpu")


def resolve_precision(config: TrainConfig, device: Any) -> str:
    """``bf16`` or ``fp32``; ``auto`` picks bf16 autocast on CUDA GPUs that support it."""
    if config.precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if config.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrainingError("precision 'bf16' is not supported by this GPU: use fp32 or auto")
    return config.precision


class BatchFeeder:
    """Holds the training tensors and produces each epoch's rows in batch order.

    On CPU (and for ``placement: device`` on CUDA) one gather per epoch lays this rank's rows
    out contiguously, so a batch is a view. With ``placement: host`` on CUDA the gather
    writes into a pinned host buffer allocated once, and batches are copied to the GPU
    asynchronously (``non_blocking``).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, device: Any, placement: str) -> None:
        self.n = int(x.shape[0])
        x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        y_t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32).reshape(-1, 1))
        self.copy_batches = False
        if device.type == "cuda":
            on_device = placement == "device"
            if placement == "auto":
                free, _total = torch.cuda.mem_get_info(device)
                on_device = 2 * (x_t.nbytes + y_t.nbytes) < free // 4
            if on_device:
                x_t, y_t = x_t.to(device), y_t.to(device)
            else:
                self.copy_batches = True
                self._x_buf = torch.empty_like(x_t).pin_memory()
                self._y_buf = torch.empty_like(y_t).pin_memory()
        self.device = device
        self.x, self.y = x_t, y_t

    def epoch(self, order: np.ndarray) -> tuple[Any, Any]:
        idx = torch.from_numpy(order)
        if self.copy_batches:
            m = idx.shape[0]
            xs, ys = self._x_buf[:m], self._y_buf[:m]
            torch.index_select(self.x, 0, idx, out=xs)
            torch.index_select(self.y, 0, idx, out=ys)
            return xs, ys
        idx = idx.to(self.x.device)
        return self.x.index_select(0, idx), self.y.index_select(0, idx)


__all__ = ["BatchFeeder", "resolve_device", "resolve_precision", "seed_everything"]
