"""Early stopping on the monitored validation metric (``monitor``, ``min_delta``, ``patience``).

:class:`EarlyStopping` tracks the best epoch and score and the epochs since the last
improvement. Its state travels in the checkpoints, so a resumed run stops where an
uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_kit.training.config import TrainConfig


def improves(score: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether ``score`` beats ``best`` by more than ``min_delta`` (``mode``: ``min`` or ``max``).

    A NaN score never improves; any other score improves on no best or a NaN best.
    """
    if math.isnan(score):
        return False
    if best is None or math.isnan(best):
        return True
    return score > best + min_delta if mode == "max" else score < best - min_delta


@dataclass
class EarlyStopping:
    """The early-stopping state of a run.

    Attributes:
        key: the validation metric watched (``monitor`` without ``val_``).
        mode: ``min`` for ``val_loss``, else ``max``.
        min_delta: the smallest change that counts as better.
        patience: epochs without improvement before the run stops (None: never).
        best_epoch: the epoch of the best score (0: none yet).
        best_score: the best score (None: none yet).
        bad_epochs: epochs since the last improvement.
    """

    key: str
    mode: str
    min_delta: float
    patience: int | None
    best_epoch: int = 0
    best_score: float | None = None
    bad_epochs: int = 0

    @classmethod
    def from_config(cls, config: TrainConfig) -> EarlyStopping:
        """The state at the start of a run of ``config``."""
        return cls(
            key=config.monitor.removeprefix("val_"),
            mode="min" if config.monitor == "val_loss" else "max",
            min_delta=config.min_delta,
            patience=config.patience,
        )

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        """Take the state a checkpoint saved (``best_epoch``, ``best_score``, ``bad_epochs``)."""
        self.best_epoch, self.best_score, self.bad_epochs = (
            checkpoint["best_epoch"],
            checkpoint["best_score"],
            checkpoint["bad_epochs"],
        )

    def update(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Record an epoch's validation metrics; True when its score is a new best."""
        score = metrics[self.key]
        improved = improves(score, self.best_score, self.mode, self.min_delta)
        if improved:
            self.best_epoch, self.best_score, self.bad_epochs = epoch, score, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def exhausted(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.patience is not None and self.bad_epochs >= self.patience


__all__ = ["EarlyStopping", "improves"]
