"""The trainer's command line for a job: ``python -m mlops_kit.training train ...``.

The config travels inline: :func:`flatten_config` turns a
:class:`~mlops_kit.training.config.TrainConfig` into dotted keys and YAML values that the
trainer's ``--set`` parser reads back to the same config, and :func:`train_arguments`
builds the ``train`` arguments of a :class:`~mlops_kit.training.launchers.spec.TrainingJobSpec`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from mlops_kit.training.config import TrainConfig
from mlops_kit.training.launchers.spec import TrainingJobSpec


def _yaml_scalar(value: Any) -> str:
    """``value`` as YAML the trainer's ``--set`` parser reads back to the same value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        import yaml

        if value and value == value.strip() and "\n" not in value:
            try:
                if yaml.safe_load(value) == value:
                    return value
            except yaml.YAMLError:
                pass
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as a --set value")


def flatten_config(config: TrainConfig, *, only_changed: bool = False) -> dict[str, str]:
    """Dotted keys -> YAML values of a trainer config (``model.hidden_sizes`` -> ``[64, 32]``).

    Args:
        config: the trainer config.
        only_changed: keep only the fields that differ from their defaults.
    """
    data = config.model_dump(mode="json", exclude_defaults=only_changed)
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            out[prefix] = _yaml_scalar(node)

    walk("", data)
    return out


def train_arguments(
    spec: TrainingJobSpec,
    *,
    data: str | None = None,
    out: str | None = None,
    checkpoint: str | None = None,
    config: TrainConfig | None = None,
) -> list[str]:
    """The arguments of ``python -m mlops_kit.training`` for ``spec`` (from ``train`` on).

    The config travels inline as ``--set key=value`` pairs of its non-default fields, so the
    job runs exactly the config validated at submission.
    """
    cfg = config if config is not None else spec.resolved_config()
    ckpt = checkpoint if checkpoint is not None else spec.checkpoint_uri
    if ckpt is not None:
        cfg = cfg.model_copy(update={"checkpoint_uri": ckpt})
    args = ["train", "--data", data or spec.data_uri, "--out", out or spec.output_uri]
    for key, value in flatten_config(cfg, only_changed=True).items():
        args += ["--set", f"{key}={value}"]
    return args + list(spec.extra_args)


__all__ = ["flatten_config", "train_arguments"]
