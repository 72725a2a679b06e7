"""The promotion policy: typed gates, loadable from YAML.

Example ``policy.yaml``::

    thresholds: {roc_auc: 0.85, pr_auc: 0.40}
    champion: {metric: roc_auc, margin: 0.005}
    require_parity: true
    require_data_quality: true
    latency: {max_p99_ms: 2.0, calls: 2000}
    require_approval: true          # for target champion
    evaluation: {uri: /data/eval.parquet, label_column: label}

Every section and field is optional; an unknown key or a value of the wrong type is
refused with :class:`~mlops_kit.registry.errors.PolicyError` naming it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_kit.errors import format_validation_error
from mlops_kit.registry.errors import PolicyError

Metric = Literal["roc_auc", "pr_auc", "f1"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """Absolute floors on the evaluation set (``None``: not checked)."""

    roc_auc: float | None = Field(0.85, ge=0.0, le=1.0, description="Minimum ROC-AUC.")
    pr_auc: float | None = Field(None, ge=0.0, le=1.0, description="Minimum PR-AUC.")
    f1: float | None = Field(None, ge=0.0, le=1.0, description="Minimum F1 at the threshold.")


class ChampionGate(_Strict):
    """The candidate must beat the current champion on the same evaluation data."""

    enabled: bool = True
    metric: Metric = "roc_auc"
    margin: float = Field(
        0.0, ge=-1.0, le=1.0, description="candidate - champion must be at least this."
    )


class LatencyGate(_Strict):
    """p99 single-row ONNX Runtime latency on CPU (one intra-op thread)."""

    max_p99_ms: float | None = Field(5.0, gt=0.0, description="Bound on the p99, milliseconds.")
    calls: int = Field(1000, ge=10, le=1_000_000, description="Timed single-row calls.")
    warmup: int = Field(50, ge=0, le=100_000, description="Untimed calls first.")


class EvaluationSpec(_Strict):
    """The fixed evaluation set."""

    uri: str | None = Field(None, description="Parquet file (or training-set folder).")
    label_column: str = "label"
    split: Literal["all", "validation"] = Field(
        "all", description="all rows, or the time-split validation rows of a training table."
    )
    timestamp_column: str = "event_timestamp"
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Decision threshold for F1.")


class PromotionPolicy(_Strict):
    """Every gate a version passes before an alias moves to it."""

    thresholds: Thresholds = Field(default_factory=Thresholds)
    champion: ChampionGate = Field(default_factory=ChampionGate)
    require_parity: bool = Field(
        True,
        description="The registered ONNX graph matches the run's torch weights (recomputed).",
    )
    require_data_quality: bool = Field(
        True, description="The data-quality report of the training data passed."
    )
    latency: LatencyGate = Field(default_factory=LatencyGate)
    require_approval: bool = Field(
        True, description="Promotion to champion needs a recorded manual approval."
    )
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)

    def sha256(self) -> str:
        """A short digest of the policy (recorded with every decision)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_policy(data: Any, source: str = "") -> PromotionPolicy:
    """A :class:`PromotionPolicy` from a mapping (``None``: the defaults).

    Raises:
        PolicyError: naming each unknown key or wrongly typed value.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{f'promotion policy {source}'.rstrip()} must be a mapping of sections (thresholds, "
            f"champion, latency, evaluation...), got {type(data).__name__}"
        )
    try:
        return PromotionPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(
            format_validation_error(
                exc,
                f"promotion policy {source}".rstrip(),
                root="policy",
                unknown="unknown key (check the spelling; see docs/registry.md)",
            )
        ) from None


def load_policy(path: str | Path | None) -> PromotionPolicy:
    """Read a policy YAML (or JSON) file; ``None`` gives the defaults.

    Raises:
        PolicyError: the file is missing or not YAML, or has an unknown key or a wrong type.
    """
    if path is None:
        return PromotionPolicy()
    import yaml

    from mlops_kit import storage

    text_path = str(path)
    try:
        raw = storage.read_bytes(text_path)
    except Exception as exc:
        raise PolicyError(f"cannot read promotion policy '{text_path}': {exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"promotion policy '{text_path}' is not valid YAML: {exc}") from None
    return parse_policy(data, f"'{text_path}'")


__all__ = [
    "ChampionGate",
    "EvaluationSpec",
    "LatencyGate",
    "PromotionPolicy",
    "Thresholds",
    "load_policy",
    "parse_policy",
]
