"""Errors of the trainer (importable without torch)."""

from __future__ import annotations

from typing import Any

from mlops_kit.errors import MlopsKitError


class TrainingError(MlopsKitError):
    """The training input, a checkpoint or the training run itself is unusable."""

    code = "TRAINING_ERROR"


class ParityError(MlopsKitError):
    """The exported ONNX graph disagrees with the PyTorch model beyond the tolerance.

    Attributes:
        max_abs_diff: largest absolute difference over every output element.
        max_rel_diff: largest relative difference ``|onnx - torch| / |torch|``.
        where: ``(output name, row, column)`` of the element furthest past the tolerance.
    """

    code = "ONNX_PARITY_FAILED"

    def __init__(
        self,
        message: str,
        *,
        max_abs_diff: float,
        max_rel_diff: float,
        where: tuple[str, int, int],
        **details: Any,
    ) -> None:
        super().__init__(
            message,
            max_abs_diff=max_abs_diff,
            max_rel_diff=max_rel_diff,
            where=where,
            **details,
        )
        self.max_abs_diff = max_abs_diff
        self.max_rel_diff = max_rel_diff
        self.where = where
