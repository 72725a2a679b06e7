"""mlops_kit.pipelines.submit: arguments are checked before kfp.Client is reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.errors import ConfigError
from mlops_kit.pipelines import submit
from mlops_kit.pipelines.client import pipeline_inputs
from tests.conftest import REPO

pytestmark = pytest.mark.kfp

ETL = REPO / "pipelines" / "etl.yaml"
HOST = "http://ml-pipeline-ui.kubeflow:80"


class FakeClient:
    """Records what submit asks of kfp.Client."""

    calls: list[tuple[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeClient.calls.append(("init", kwargs))

    def create_run_from_pipeline_package(self, pipeline_file: str, **kwargs: Any) -> Any:
        FakeClient.calls.append(("run", {"pipeline_file": pipeline_file, **kwargs}))
        return type("Run", (), {"run_id": "run-123"})()


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    kfp = pytest.importorskip("kfp")
    FakeClient.calls = []
    monkeypatch.setattr(kfp, "Client", FakeClient)
    return FakeClient


def test_pipeline_inputs_of_the_etl_pipeline():
    inputs = pipeline_inputs(ETL)
    assert {"settings_json", "file_uris", "file_prefix", "api_url", "now"} <= set(inputs)
    assert inputs["settings_json"]["defaultValue"] == "{}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pipeline_yaml": "missing.yaml"}, "does not exist"),
        ({"pipeline_yaml": "pipelines/etl_pipeline.py"}, r"\.yaml or \.yml"),
        ({"host": ""}, "host is required"),
        ({"host": "ml-pipeline:8888"}, "must start with http"),
        ({"arguments": {"file_uri": ["a.csv"]}}, "unknown pipeline argument.*file_uri.*file_uris"),
        ({"arguments": ["file_prefix"]}, "must be a mapping"),
        ({"arguments": {1: "x"}}, "names must be strings"),
        ({"experiment": " "}, "experiment must be a non-empty name"),
    ],
)
def test_invalid_arguments_fail_before_any_client(kwargs: dict, message: str, monkeypatch):
    monkeypatch.chdir(REPO)
    call = {"pipeline_yaml": ETL, "host": HOST, **kwargs}
    with pytest.raises(ConfigError, match=message):
        submit(**call)


def test_not_a_pipeline(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("a: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        submit(path, HOST)
    path.write_text("kind: Deployment\n")
    with pytest.raises(ConfigError, match="not a compiled KFP v2 pipeline"):
        submit(path, HOST)


def test_required_inputs_must_be_given(tmp_path: Path):
    path = tmp_path / "needs.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "pipelineInfo": {"name": "needs-text"},
                "root": {
                    "inputDefinitions": {
                        "parameters": {
                            "text": {"parameterType": "STRING"},
                            "times": {
                                "defaultValue": 1,
                                "isOptional": True,
                                "parameterType": "NUMBER_INTEGER",
                            },
                        }
                    }
                },
            }
        )
    )
    with pytest.raises(ConfigError, match=r"missing required pipeline argument\(s\) text"):
        submit(path, HOST, {"times": 2})


def test_submit_calls_kfp_client(fake_client: type[FakeClient]):
    run_id = submit(
        ETL,
        HOST + "/",
        {"file_prefix": "s3://drop/2026-01-04/"},
        "etl",
        run_name="etl-2026-01-04",
        namespace="data-pipeline",
        service_account="mlops-kit-pipeline",
        existing_token="t0ken",
    )
    assert run_id == "run-123"
    (_, init), (_, run) = fake_client.calls
    assert init == {"host": HOST, "namespace": "data-pipeline", "existing_token": "t0ken"}
    assert run == {
        "pipeline_file": str(ETL),
        "arguments": {"file_prefix": "s3://drop/2026-01-04/"},
        "run_name": "etl-2026-01-04",
        "experiment_name": "etl",
        "service_account": "mlops-kit-pipeline",
        "namespace": "data-pipeline",
    }


def test_submit_without_namespace_keeps_kfp_default(fake_client: type[FakeClient]):
    submit(ETL, HOST)
    (_, init), (_, run) = fake_client.calls
    assert init == {"host": HOST} and "namespace" not in run
    assert run["arguments"] == {} and run["experiment_name"] is None
