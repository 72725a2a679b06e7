"""mlops_kit.platform.terraform: Terraform outputs -> mlops_kit config (no terraform needed)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.platform.terraform import (
    REQUIRED_OUTPUTS,
    TerraformOutputError,
    config_from_outputs,
    load_outputs,
    write_config,
)

FIXTURE = Path(__file__).with_name("fixtures") / "outputs.json"
TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"
ENVS_DIR = TERRAFORM_DIR / "envs"
ACCOUNT = "123456789012"

EXPECTED = {
    "profile": "aws",
    "aws": {"region": "eu-west-1"},
    "storage": {
        "raw_uri": f"s3://mlops-kit-prod-raw-{ACCOUNT}/raw",
        "processed_uri": f"s3://mlops-kit-prod-processed-{ACCOUNT}/processed",
        "quarantine_uri": f"s3://mlops-kit-prod-processed-{ACCOUNT}/quarantine",
        "models_uri": f"s3://mlops-kit-prod-models-{ACCOUNT}/models",
        "artifacts_uri": f"s3://mlops-kit-prod-artifacts-{ACCOUNT}/pipelines",
    },
    "stream": {"backend": "kinesis", "stream_name": "mlops-kit-prod-ingest"},
    "warehouse": {
        "url": "postgresql+psycopg://mlops_admin@mlops-kit-prod-aurora.cluster-c9akciq32.eu-west-1.rds.amazonaws.com:5432/mlops",
        "secret_arn": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:rds!cluster-3f1c2a7e-AbCdEf",
    },
    "features": {"online_store": "dynamodb", "dynamodb_table": "mlops-kit-prod-features"},
    "cluster": {
        "name": "mlops-kit-prod",
        "service_account_roles": {
            "api": f"arn:aws:iam::{ACCOUNT}:role/mlops-kit-prod-api",
            "inference": f"arn:aws:iam::{ACCOUNT}:role/mlops-kit-prod-inference",
            "data_pipeline": f"arn:aws:iam::{ACCOUNT}:role/mlops-kit-prod-data-pipeline",
            "training": f"arn:aws:iam::{ACCOUNT}:role/mlops-kit-prod-training",
            "pipelines": f"arn:aws:iam::{ACCOUNT}:role/mlops-kit-prod-pipelines",
        },
        "gpu_node_label": "mlops-kit/accelerator=nvidia-gpu",
        "gpu_taint": "nvidia.com/gpu=present:NoSchedule",
    },
    "images": {
        "training": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/mlops-kit-prod/training",
        "serving": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/mlops-kit-prod/serving",
        "pipeline": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/mlops-kit-prod/pipeline",
    },
}


@pytest.fixture
def outputs() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_config_from_outputs(outputs: dict[str, Any]) -> None:
    assert config_from_outputs(outputs) == EXPECTED


def test_plain_values_are_accepted(outputs: dict[str, Any]) -> None:
    plain = {name: entry["value"] for name, entry in outputs.items()}
    assert config_from_outputs(plain) == EXPECTED


@pytest.mark.parametrize("name", REQUIRED_OUTPUTS)
def test_missing_output_names_it_and_the_fix(outputs: dict[str, Any], name: str) -> None:
    del outputs[name]
    with pytest.raises(ValueError, match=re.escape(f"'{name}'")) as caught:
        config_from_outputs(outputs)
    assert "terraform apply" in str(caught.value)
    assert isinstance(caught.value, TerraformOutputError)
    assert caught.value.code == "TERRAFORM_OUTPUT_MISSING"


def test_null_output_counts_as_missing(outputs: dict[str, Any]) -> None:
    outputs["aurora_master_secret_arn"]["value"] = None
    with pytest.raises(ValueError, match="aurora_master_secret_arn"):
        config_from_outputs(outputs)


@pytest.mark.parametrize(
    ("name", "key"), [("service_account_role_arns", "training"), ("ecr_repository_urls", "serving")]
)
def test_missing_map_key(outputs: dict[str, Any], name: str, key: str) -> None:
    del outputs[name]["value"][key]
    with pytest.raises(ValueError, match=re.escape(f'{name}["{key}"]')):
        config_from_outputs(outputs)


def test_map_output_of_wrong_type(outputs: dict[str, Any]) -> None:
    outputs["ecr_repository_urls"]["value"] = "not-a-map"
    with pytest.raises(ValueError, match="must be a map"):
        config_from_outputs(outputs)


def test_input_is_not_mutated(outputs: dict[str, Any]) -> None:
    before = copy.deepcopy(outputs)
    config_from_outputs(outputs)
    assert outputs == before


def test_write_config_from_file(tmp_path: Path) -> None:
    dest = tmp_path / "conf" / "mlops_kit.yaml"
    written = write_config(FIXTURE, dest)
    assert written == EXPECTED
    assert yaml.safe_load(dest.read_text()) == EXPECTED
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mlops_kit.yaml"]


def test_write_config_replaces_atomically(tmp_path: Path, outputs: dict[str, Any]) -> None:
    dest = tmp_path / "mlops_kit.yaml"
    dest.write_text("profile: local\n")
    write_config(outputs, dest)
    assert yaml.safe_load(dest.read_text())["profile"] == "aws"
    assert [p.name for p in tmp_path.iterdir()] == ["mlops_kit.yaml"]


def test_write_config_leaves_the_old_file_on_error(tmp_path: Path, outputs: dict[str, Any]) -> None:
    dest = tmp_path / "mlops_kit.yaml"
    dest.write_text("profile: local\n")
    del outputs["cluster_name"]
    with pytest.raises(ValueError, match="cluster_name"):
        write_config(outputs, dest)
    assert dest.read_text() == "profile: local\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mlops_kit.yaml"]


def test_load_outputs_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="terraform output -json"):
        load_outputs(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not the JSON"):
        load_outputs(bad)
    bad.write_text("[]")
    with pytest.raises(ValueError, match="JSON object"):
        load_outputs(bad)


def test_settings_accept_the_generated_config(
    outputs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_kit.config import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_KIT_CONFIG", raising=False)
    settings = Settings(**config_from_outputs(outputs))
    assert settings.profile == "aws"
    assert settings.cluster.service_account_roles["training"].endswith("mlops-kit-prod-training")
    assert settings.features.dynamodb_table == "mlops-kit-prod-features"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_env_declares_the_outputs(env: str) -> None:
    declared = set(
        re.findall(r'^output "(\w+)"', (ENVS_DIR / env / "outputs.tf").read_text(), re.MULTILINE)
    )
    assert set(REQUIRED_OUTPUTS) <= declared, sorted(set(REQUIRED_OUTPUTS) - declared)
    assert "feature_table_names" in declared


def test_dynamodb_table_is_the_prefix_of_the_terraform_tables(
    outputs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feast, configured from the outputs, names exactly the tables Terraform created."""
    from mlops_kit.config import Settings
    from mlops_kit.features.catalog import catalog_for

    VIEWS = catalog_for().views
    from mlops_kit.features.config import repo_config_dict

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_KIT_CONFIG", raising=False)
    settings = Settings(**config_from_outputs(outputs))
    template = repo_config_dict(settings)["online_store"]["table_name_template"]
    feast_tables = {view: template.format(table_name=view) for view in VIEWS}
    assert feast_tables == outputs["feature_table_names"]["value"]


def test_terraform_feature_views_match_the_catalog() -> None:
    """The data module's default feature_views are the catalog's views: one table each."""
    from mlops_kit.features.catalog import catalog_for

    VIEWS = catalog_for().views

    variables = (TERRAFORM_DIR / "modules" / "data" / "variables.tf").read_text()
    block = re.search(r'variable "feature_views" \{.*?^\}', variables, re.MULTILINE | re.DOTALL)
    assert block, "modules/data/variables.tf must declare feature_views"
    default = re.search(r"^\s*default\s*=\s*(\[.*?\])", block.group(0), re.MULTILINE)
    assert default, "feature_views needs a default"
    assert json.loads(default.group(1)) == list(VIEWS)


def test_module_imports_stay_light() -> None:
    source = Path(__import__("mlops_kit.platform.terraform", fromlist=["x"]).__file__).read_text()
    imported = set(re.findall(r"^\s*(?:from|import) ([\w.]+)", source, re.MULTILINE))
    assert imported <= {
        "__future__",
        "json",
        "os",
        "tempfile",
        "collections.abc",
        "pathlib",
        "typing",
        "yaml",
        "mlops_kit.errors",
    }
