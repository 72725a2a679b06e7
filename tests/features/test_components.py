"""KFP components of the feature store: golden specs, interface, and their steps run bare."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from .test_registry_and_cli import etl_home  # noqa: F401  (module fixture)

REPO = Path(__file__).resolve().parents[2]
NAMES = ("features_apply", "features_materialize", "features_training_set")


@pytest.mark.kfp
@pytest.mark.parametrize("name", NAMES)
def test_golden_spec(name: str) -> None:
    pytest.importorskip("kfp")
    from mlops_kit.components import COMPONENTS, get_component
    from mlops_kit.pipelines.compile import COMPILE_COMMAND, render

    assert name in COMPONENTS
    text = render(get_component(name))
    path = REPO / "components" / name / "component.yaml"
    assert path.is_file() and path.read_text(encoding="utf-8") == text, (
        f"{path} is stale: run '{COMPILE_COMMAND}'"
    )
    spec = yaml.safe_load(text)
    (component,) = spec["components"].values()
    params = component["inputDefinitions"]["parameters"]
    assert params["settings_json"]["defaultValue"] == "{}"
    outputs = {
        k: v["artifactType"]["schemaTitle"]
        for k, v in component["outputDefinitions"]["artifacts"].items()
    }
    assert (
        outputs
        == {
            "features_apply": {"metrics": "system.Metrics"},
            "features_materialize": {"metrics": "system.Metrics"},
            "features_training_set": {"training_set": "system.Dataset"},
        }[name]
    )
    (executor,) = spec["deploymentSpec"]["executors"].values()
    command = " ".join(executor["container"]["command"])
    assert "pip install" not in command and f"import {name}_step" in command


class Artifact:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.metadata: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}

    def log_metric(self, metric: str, value: float) -> None:
        self.metrics[metric] = value


def test_steps_without_a_pipeline(etl_home: Path, tmp_path: Path) -> None:  # noqa: F811
    from mlops_kit.components.runtime import features as runtime

    settings_json = json.dumps({"home": str(etl_home)})
    applied = Artifact(tmp_path / "apply")
    runtime.features_apply_step(applied, settings_json)
    assert applied.metrics == {"feature_views": 2, "source_files": 2}
    assert applied.metadata["feature_services"] == ["device_failure_v1", "device_failure_v2"]

    mat = Artifact(tmp_path / "mat")
    runtime.features_materialize_step(mat, "", True, settings_json)
    assert mat.metadata["status"] == "materialized" and mat.metrics["rows"] > 0

    import pyarrow as pa
    import pyarrow.parquet as pq

    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    noon = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    labels = pa.table(
        {
            "device_id": ["dev-0001", "ghost"],
            "ts": pa.array([noon, noon], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(labels, labels_dir / "labels.parquet")
    out = Artifact(tmp_path / "ts")
    runtime.features_training_set_step(
        out, Artifact(labels_dir), ["readings_1h"], "drop", "ts", settings_json
    )
    md = out.metadata
    assert (md["rows_in"], md["rows_out"], md["dropped"], md["without_features"]) == (2, 1, 1, 1)
    assert md["features"] == ["device_hourly:readings_1h"]
    manifest = json.loads((tmp_path / "ts" / "manifest.json").read_text())
    assert manifest["accounting"]["missing_policy"] == "drop"
    assert pq.read_table(tmp_path / "ts" / "data.parquet").num_rows == 1
