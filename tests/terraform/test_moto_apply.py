"""Apply, re-plan (no changes) and destroy the dev environment against moto's server.

Run it alone with ``pytest -m tf_apply``. What moto cannot emulate is switched off through the
environment's own toggles (``moto_cycle.MOTO_VARIABLES``); attributes moto does not read back are
listed in ``moto_cycle.MOTO_ROUND_TRIP_GAPS``. See docs/aws-deployment.md.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.platform.terraform import config_from_outputs, write_config

pytestmark = [pytest.mark.terraform, pytest.mark.tf_apply, pytest.mark.aws, pytest.mark.slow]


def test_dev_apply_replan_destroy(dev_apply_cycle: Future[Any], tmp_path: Path) -> None:
    result = dev_apply_cycle.result(timeout=900)
    print(f"moto cycle timings (s): {result.seconds}")
    assert result.error is None, result.error
    assert result.live_check_error is None, result.live_check_error

    outputs = result.outputs
    config = config_from_outputs(outputs)
    assert config["profile"] == "aws"
    assert config["aws"] == {"region": "us-east-1"}
    assert config["storage"]["raw_uri"] == "s3://mlops-kit-dev-raw-123456789012/raw"
    assert (
        config["storage"]["quarantine_uri"]
        == "s3://mlops-kit-dev-processed-123456789012/quarantine"
    )
    assert config["stream"] == {"backend": "kinesis", "stream_name": "mlops-kit-dev-ingest"}
    assert config["features"] == {
        "online_store": "dynamodb",
        "dynamodb_table": "mlops-kit-dev-features",
    }
    assert outputs["feature_table_names"]["value"] == {
        "device_hourly": "mlops-kit-dev-features.device_hourly",
        "device_daily": "mlops-kit-dev-features.device_daily",
    }
    assert config["cluster"]["name"] == "mlops-kit-dev"
    assert set(config["cluster"]["service_account_roles"]) == {
        "api",
        "inference",
        "data_pipeline",
        "training",
        "pipelines",
    }
    assert all(
        arn.startswith("arn:aws:iam::123456789012:role/")
        for arn in config["cluster"]["service_account_roles"].values()
    )
    assert config["warehouse"]["url"].startswith("postgresql+psycopg://mlops_admin@")
    assert config["warehouse"]["url"].endswith(":5432/mlops")
    assert config["warehouse"]["secret_arn"].startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    )
    assert set(config["images"]) == {"training", "serving", "pipeline"}
    assert config["images"]["training"].endswith("/mlops-kit-dev/training")
    assert write_config(outputs, tmp_path / "mlops_kit.yaml") == config

    assert result.plan_returncode == 0, f"re-plan after apply is not empty:\n{result.plan_output}"
    assert result.state_left == [], f"destroy left resources in state: {result.state_left}"
