"""Training checkpoints: ``last.pt`` and ``best.pt``, their format, and the RNG state in them.

Each epoch ends with ``best.pt`` (when the monitored metric improved) and then ``last.pt``
written atomically by rank 0. They hold the weights, the optimiser, the early-stopping
state, the history and every rank's RNG state, with the config and preprocessing
statistics of the run; :meth:`Checkpoints.load` refuses a checkpoint written with another
config or on other data.
"""

from __future__ import annotations

import io
import logging
import random
from typing import Any

import numpy as np

from mlops_kit import storage
from mlops_kit._lazy import require
from mlops_kit.model.preprocess import Preprocessor
from mlops_kit.training import distributed as dist_utils
from mlops_kit.training.config import TrainConfig
from mlops_kit.training.distributed import DistContext
from mlops_kit.training.early_stopping import EarlyStopping
from mlops_kit.training.errors import TrainingError

torch = require("torch", "training")

log = logging.getLogger("mlops_kit.training")

CHECKPOINT_FORMAT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


def rng_state() -> dict[str, Any]:
    """This process's Python, numpy, torch and (when in use) CUDA RNG states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def read_checkpoint(uri: str) -> dict[str, Any]:
    """The checkpoint at ``uri``, on CPU.

    Raises:
        TrainingError: unreadable, or not an mlops_kit checkpoint of this format.
    """
    try:
        ckpt = torch.load(
            io.BytesIO(storage.read_bytes(uri)), map_location="cpu", weights_only=False
        )
    except Exception as exc:
        raise TrainingError(f"cannot read checkpoint '{uri}': {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise TrainingError(
            f"'{uri}' is not an mlops_kit checkpoint (format {CHECKPOINT_FORMAT_VERSION})"
        )
    return ckpt


class Checkpoints:
    """The ``last.pt`` and ``best.pt`` of one run.

    Args:
        uri: the folder (storage URI) that holds them.
        config: the run's configuration (saved with them, and compared on resume).
    """

    def __init__(self, uri: str, config: TrainConfig) -> None:
        self.uri = uri
        self.config = config

    def uri_of(self, name: str) -> str:
        """The URI of checkpoint ``name`` (:data:`LAST` or :data:`BEST`)."""
        return storage.join(self.uri, name)

    def save(
        self,
        ctx: DistContext,
        model: Any,
        optimizer: Any,
        pre: Preprocessor,
        epoch: int,
        history: list[dict[str, Any]],
        stopping: EarlyStopping,
        improved: bool,
        finished: bool,
        stopped: bool,
    ) -> None:
        """Write ``best.pt`` (when ``improved``) then ``last.pt`` from rank 0; all ranks wait.

        Every rank's RNG state is gathered into the checkpoint.
        """
        rngs = dist_utils.gather_objects(rng_state(), ctx)
        if ctx.is_main:
            payload = {
                "format_version": CHECKPOINT_FORMAT_VERSION,
                "epoch": epoch,
                "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer_state": optimizer.state_dict(),
                "history": history,
                "best_epoch": stopping.best_epoch,
                "best_score": stopping.best_score,
                "bad_epochs": stopping.bad_epochs,
                "finished": finished,
                "stopped_early": stopped,
                "rng": rngs,
                "world_size": ctx.world_size,
                "config": self.config.model_dump(mode="json"),
                "preprocessor": pre.to_dict(),
            }
            buf = io.BytesIO()
            torch.save(payload, buf)
            data = buf.getvalue()
            if improved:
                storage.write_bytes(self.uri_of(BEST), data)
            storage.write_bytes(self.uri_of(LAST), data)
        dist_utils.barrier(ctx)

    def load(self, pre: Preprocessor, ctx: DistContext) -> dict[str, Any] | None:
        """``last.pt``, or None when there is none.

        Raises:
            TrainingError: it was written with another model, optimiser, data, seed, batch
                size or ``pos_weight`` config, or on data with other preprocessing statistics.
        """
        uri = self.uri_of(LAST)
        if not storage.exists(uri):
            return None
        ckpt = read_checkpoint(uri)
        saved = ckpt.get("config", {})
        now = self.config.model_dump(mode="json")
        for section in ("model", "optimizer", "data"):
            if saved.get(section) != now[section]:
                raise TrainingError(
                    f"checkpoint '{uri}' was written with another '{section}' config; resume "
                    "with the same config, or start fresh (another checkpoint_uri or --no-resume)"
                )
        for key in ("seed", "batch_size", "pos_weight"):
            if saved.get(key) != now[key]:
                raise TrainingError(
                    f"checkpoint '{uri}' was written with {key}={saved.get(key)!r} (now "
                    f"{now[key]!r}); resume with the same config or start fresh"
                )
        if Preprocessor.from_dict(ckpt["preprocessor"]) != pre:
            raise TrainingError(
                f"the training data differ from the data checkpoint '{uri}' was trained on "
                "(other preprocessing statistics); start fresh to train on new data"
            )
        if ckpt.get("world_size", 1) != ctx.world_size:
            log.warning(
                "checkpoint was written by %s process(es), resuming on %s",
                ckpt.get("world_size"),
                ctx.world_size,
            )
        return ckpt

    def read_best_state(self) -> dict[str, Any] | None:
        """The weights of ``best.pt``, or None when there is none."""
        uri = self.uri_of(BEST)
        if not storage.exists(uri):
            return None
        return dict(read_checkpoint(uri)["model_state"])


__all__ = [
    "BEST",
    "CHECKPOINT_FORMAT_VERSION",
    "LAST",
    "Checkpoints",
    "read_checkpoint",
    "rng_state",
    "set_rng_state",
]
