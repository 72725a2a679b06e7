"""Both bundled datasets to a promoted model with the same code: ETL -> training table ->
train -> ONNX (parity) -> register -> challenger -> champion; and a model refused when
the settings select another version of its dataset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from mlops_kit.config import load_settings
from mlops_kit.data.generate import SpecGeneratorConfig, generate, known_ids, to_raw
from mlops_kit.data.spec import bundled_specs, spec_of
from mlops_kit.etl import run_etl, write_device_registry
from mlops_kit.ingest.raw_zone import land

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=4)
POLICY = {
    "thresholds": {"roc_auc": 0.5},
    "champion": {"metric": "roc_auc", "margin": 0.0},
    "latency": {"max_p99_ms": 50.0, "calls": 100},
    "require_approval": True,
    "evaluation": {"label_column": "label"},
}
CONFIG = {
    "epochs": 3,
    "patience": None,
    "batch_size": 128,
    "model": {"hidden_sizes": [16]},
    "export": {"exporter": "torchscript"},
}


@pytest.mark.parametrize("name", bundled_specs())
def test_each_dataset_reaches_a_champion_and_another_version_is_refused(
    tmp_path: Path, name: str
) -> None:
    from mlops_kit.demo.model import register_and_promote, train_on_lake
    from mlops_kit.model.predictor import load_predictor
    from mlops_kit.registry import ModelRegistry
    from mlops_kit.registry.policy import parse_policy
    from mlops_kit.training.config import default_feature_columns

    s = load_settings(home=tmp_path / "home", dataset=name)
    spec = spec_of(s)
    table = generate(
        spec, SpecGeneratorConfig(n_entities=8, start=T0, freq_s=600, steps=3 * 144, seed=2)
    )
    if spec.entity.known_ids.source == "registry":
        write_device_registry(s, known_ids(spec, 8))
    raw = to_raw(spec, table, bad_rate=0.05, unit_rate=0.2, seed=4)
    land(s.storage.raw_uri or "", "files", raw.to_bytes(), "jsonl")
    assert run_etl(s, now=NOW).loaded == raw.clean_rows

    trained = train_on_lake(s, config=CONFIG)
    assert trained["parity"]["passed"] is True
    policy = parse_policy(POLICY, "(test)")
    out = register_and_promote(
        s, trained["run_id"], evaluation_uri=trained["evaluation_uri"], policy=policy
    )
    assert out["challenger"]["accepted"] and out["champion"]["accepted"], out
    checks = {c["name"]: c for c in out["champion"]["checks"]}
    assert checks["dataset"]["passed"] and checks["dataset"]["value"] == f"{name} v1"
    version = out["registered"]["version"]
    assert out["aliases"]["champion"] == str(version)

    registry = ModelRegistry(s)
    model = registry.default_name(None)
    tags = registry.version(model, "champion").tags
    assert tags["mlops_kit.dataset"] == name
    assert tags["mlops_kit.dataset_digest"] == spec.digest()
    predictor = load_predictor(trained["bundle_uri"])
    assert list(predictor.feature_names) == default_feature_columns(spec)

    # the same model under version 2 of its dataset: the dataset gate refuses it
    raw_spec = spec.model_dump(mode="json", exclude_none=True)
    raw_spec["version"] = 2
    v2 = tmp_path / f"{name}-v2.yaml"
    v2.write_text(yaml.safe_dump(raw_spec))
    s2 = load_settings(home=tmp_path / "home", dataset=str(v2))
    refused = ModelRegistry(s2).promote(
        model, version, policy, target="challenger", evaluation=trained["evaluation_uri"]
    )
    assert not refused.accepted
    (gate,) = [c for c in refused.checks if c.name == "dataset"]
    assert not gate.passed
    assert f"trained on {name} v1 but the settings select {name} v2" in gate.detail
