"""Errors of dataset specs (subclasses of :class:`~mlops_kit.errors.MlopsKitError`, and of
``ValueError`` for expressions, which validation wraps)."""

from __future__ import annotations

from mlops_kit.errors import ConfigError


class DatasetSpecError(ConfigError):
    """A dataset spec is invalid; ``problems`` lists each one with its field and fix."""

    code = "DATASET_SPEC_INVALID"

    def __init__(self, name: str, problems: list[str]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid dataset spec {name}:\n{lines}", problems=problems)
        self.problems = problems


class ExpressionError(ValueError):
    """An expression uses syntax outside the safe subset; the message names it."""


__all__ = ["DatasetSpecError", "ExpressionError"]
