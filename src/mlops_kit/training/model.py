"""The failure prediction model: a tabular MLP built from :class:`ModelConfig`."""

from __future__ import annotations

import io
from typing import Any

from mlops_kit._lazy import require
from mlops_kit.training.config import ModelConfig
from mlops_kit.training.errors import TrainingError

torch = require("torch", "training")
nn = torch.nn

MODEL_FORMAT_VERSION = 1
"""Version of the ``model.pt`` layout written by :func:`save_model`."""

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class FailureMLP(nn.Module):  # type: ignore[name-defined]
    """Standardised features in, one failure logit per row out (shape ``(rows, 1)``)."""

    def __init__(self, n_features: int, config: ModelConfig | None = None) -> None:
        super().__init__()
        if n_features < 1:
            raise TrainingError(f"the model needs at least one feature (got {n_features})")
        self.config = config or ModelConfig()
        self.n_features = n_features
        layers: list[Any] = []
        width = n_features
        for hidden in self.config.hidden_sizes:
            layers.append(nn.Linear(width, hidden))
            layers.append(_ACTIVATIONS[self.config.activation]())
            if self.config.dropout > 0:
                layers.append(nn.Dropout(self.config.dropout))
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: Any) -> Any:
        return self.net(features)


class ScoringModel(nn.Module):  # type: ignore[name-defined]
    """What is exported: ``features -> (logit, probability)``, both of shape ``(rows, 1)``."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Any) -> tuple[Any, Any]:
        logit = self.model(features)
        return logit, torch.sigmoid(logit)


def build_model(n_features: int, config: ModelConfig | None = None) -> FailureMLP:
    """A freshly initialised :class:`FailureMLP` (seed torch first for reproducible weights)."""
    return FailureMLP(n_features, config)


def model_bytes(model: FailureMLP, extra: dict[str, Any] | None = None) -> bytes:
    """``model.pt`` content: config, feature count and CPU state dict."""
    payload = {
        "format_version": MODEL_FORMAT_VERSION,
        "model_config": model.config.model_dump(),
        "n_features": model.n_features,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_model(model: FailureMLP, uri: str, extra: dict[str, Any] | None = None) -> None:
    """Write ``model.pt`` to a storage URI atomically."""
    from mlops_kit import storage

    storage.write_bytes(uri, model_bytes(model, extra))


def load_model(uri: str) -> FailureMLP:
    """Read a model written by :func:`save_model` (on CPU, in eval mode).

    Raises:
        TrainingError: the file is not an mlops_kit model of a supported version.
    """
    from mlops_kit import storage

    payload = torch.load(io.BytesIO(storage.read_bytes(uri)), map_location="cpu", weights_only=True)
    version = payload.get("format_version") if isinstance(payload, dict) else None
    if version != MODEL_FORMAT_VERSION:
        raise TrainingError(
            f"'{uri}' is not an mlops_kit model of format {MODEL_FORMAT_VERSION} "
            f"(found {version!r})"
        )
    model = FailureMLP(int(payload["n_features"]), ModelConfig(**payload["model_config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


__all__ = [
    "MODEL_FORMAT_VERSION",
    "FailureMLP",
    "ScoringModel",
    "build_model",
    "load_model",
    "model_bytes",
    "save_model",
]
