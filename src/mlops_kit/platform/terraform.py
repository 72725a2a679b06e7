"""Turn the outputs of an applied ``infra/terraform/envs/<env>`` into an mlops_kit config.

``terraform output -json`` gives ``{"name": {"value": ..., "type": ..., "sensitive": ...}}``;
:func:`config_from_outputs` maps it onto the ``aws`` profile of the settings file and
:func:`write_config` writes that file atomically. Only the standard library and PyYAML
are imported here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_kit.errors import ConfigError

#: Scalar outputs every environment root (``infra/terraform/envs/*/outputs.tf``) declares.
SCALAR_OUTPUTS: tuple[str, ...] = (
    "region",
    "raw_bucket_name",
    "processed_bucket_name",
    "models_bucket_name",
    "artifacts_bucket_name",
    "kinesis_stream_name",
    "feature_table_prefix",
    "aurora_writer_endpoint",
    "aurora_database_name",
    "aurora_master_username",
    "aurora_master_secret_arn",
    "cluster_name",
)
#: Map outputs: IRSA role ARN by workload, ECR repository URL by image.
MAP_OUTPUTS: tuple[str, ...] = ("service_account_role_arns", "ecr_repository_urls")
#: Every output the config needs.
REQUIRED_OUTPUTS: tuple[str, ...] = SCALAR_OUTPUTS + MAP_OUTPUTS

#: Workloads whose IRSA role ARNs the config carries (keys of ``service_account_role_arns``).
WORKLOADS: tuple[str, ...] = ("api", "inference", "data_pipeline", "training", "pipelines")
#: Images the config carries (keys of ``ecr_repository_urls``).
IMAGES: tuple[str, ...] = ("training", "serving", "pipeline")

GPU_NODE_LABEL = "mlops-kit/accelerator=nvidia-gpu"
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"


class TerraformOutputError(ConfigError, ValueError):
    """The Terraform outputs lack a value the config needs (the env is not applied, or is stale)."""

    code = "TERRAFORM_OUTPUT_MISSING"


def _missing(name: str, detail: str = "") -> TerraformOutputError:
    return TerraformOutputError(
        f"Terraform output '{name}' is missing{detail}. Run `terraform apply` in the environment "
        "(infra/terraform/envs/<env>) first, then `terraform output -json` again.",
        output=name,
    )


def _value(outputs: Mapping[str, Any], name: str) -> Any:
    """The value of output ``name``; accepts ``{"name": {"value": v}}`` and plain ``{"name": v}``."""
    if name not in outputs:
        raise _missing(name)
    entry = outputs[name]
    value = entry.get("value") if isinstance(entry, Mapping) and "value" in entry else entry
    if value is None or value == "" or value == {}:
        raise _missing(name, " (it has no value)")
    return value


def _mapping(outputs: Mapping[str, Any], name: str, keys: tuple[str, ...]) -> dict[str, str]:
    value = _value(outputs, name)
    if not isinstance(value, Mapping):
        raise TerraformOutputError(
            f"Terraform output '{name}' must be a map of {', '.join(keys)}; got {type(value).__name__}.",
            output=name,
        )
    for key in keys:
        if not value.get(key):
            raise _missing(f'{name}["{key}"]')
    return {key: str(value[key]) for key in keys}


def config_from_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Build the ``aws`` profile config from ``terraform output -json``.

    Args:
        outputs: The parsed JSON of ``terraform output -json`` run in an environment root.

    Returns:
        The settings file content as a dict (``profile``, ``aws``, ``storage``, ``stream``,
        ``warehouse``, ``features``, ``cluster``, ``images``).

    Raises:
        TerraformOutputError: (a ``ValueError``) naming the first missing output.
    """
    out = {name: str(_value(outputs, name)) for name in SCALAR_OUTPUTS}
    roles = _mapping(outputs, "service_account_role_arns", WORKLOADS)
    images = _mapping(outputs, "ecr_repository_urls", IMAGES)

    processed = out["processed_bucket_name"]
    return {
        "profile": "aws",
        "aws": {"region": out["region"]},
        "storage": {
            "raw_uri": f"s3://{out['raw_bucket_name']}/raw",
            "processed_uri": f"s3://{processed}/processed",
            "quarantine_uri": f"s3://{processed}/quarantine",
            "models_uri": f"s3://{out['models_bucket_name']}/models",
            "artifacts_uri": f"s3://{out['artifacts_bucket_name']}/pipelines",
        },
        "stream": {"backend": "kinesis", "stream_name": out["kinesis_stream_name"]},
        "warehouse": {
            "url": (
                f"postgresql+psycopg://{out['aurora_master_username']}@"
                f"{out['aurora_writer_endpoint']}:5432/{out['aurora_database_name']}"
            ),
            "secret_arn": out["aurora_master_secret_arn"],
        },
        # Feast's DynamoDB online store treats dynamodb_table as the prefix of its tables
        # ("<prefix>.<view>"); Terraform creates exactly those tables (feature_table_names).
        "features": {"online_store": "dynamodb", "dynamodb_table": out["feature_table_prefix"]},
        "cluster": {
            "name": out["cluster_name"],
            "service_account_roles": roles,
            "gpu_node_label": GPU_NODE_LABEL,
            "gpu_taint": GPU_TAINT,
        },
        "images": images,
    }


def load_outputs(source: str | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    """Read ``terraform output -json``: a mapping as is, or the path of a JSON file."""
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TerraformOutputError(
            f"Terraform outputs file '{path}' does not exist: write it with "
            "`terraform output -json > outputs.json` in the applied environment.",
            path=str(path),
        ) from None
    except json.JSONDecodeError as exc:
        raise TerraformOutputError(
            f"'{path}' is not the JSON of `terraform output -json`: {exc}", path=str(path)
        ) from None
    if not isinstance(data, dict):
        raise TerraformOutputError(
            f"'{path}' must hold a JSON object (the output of `terraform output -json`).",
            path=str(path),
        )
    return data


def write_config(
    outputs: str | os.PathLike[str] | Mapping[str, Any], dest: str | os.PathLike[str]
) -> dict[str, Any]:
    """Write the mlops_kit config built from Terraform outputs to ``dest`` (YAML), atomically.

    The file is written to a temporary file in the destination directory and moved
    into place with :func:`os.replace`, so readers never see a partial file.

    Args:
        outputs: Parsed ``terraform output -json`` or the path of a file holding it.
        dest: Path of the settings file to write (for example ``mlops_kit.yaml``).

    Returns:
        The config that was written.

    Raises:
        TerraformOutputError: When an output is missing or the outputs file is unreadable.
    """
    import yaml

    config = config_from_outputs(load_outputs(outputs))
    dest_path = Path(dest)
    dest_path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Generated from `terraform output -json` by mlops_kit.platform.terraform.write_config.\n"
        + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{dest_path.name}.", suffix=".tmp", dir=dest_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return config
