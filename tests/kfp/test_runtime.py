"""The component runtime in-process, with plain artifact objects (no kfp needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlops_kit import storage
from mlops_kit.components import runtime
from mlops_kit.components.runtime import etl as etl_runtime
from mlops_kit.components.runtime import ingest as ingest_runtime
from mlops_kit.errors import ConfigError, DataQualityError
from mlops_kit.etl.run import Batch

pytestmark = pytest.mark.kfp


@dataclass
class Art:
    """Stands in for a KFP artifact: a path, metadata and log_metric."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def log_metric(self, metric: str, value: float) -> None:
        self.metadata[metric] = value


@pytest.fixture
def arts(tmp_path: Path):
    def make(name: str) -> Art:
        return Art(str(tmp_path / "artifacts" / name))

    return make


def test_settings_json(home: Path):
    assert runtime.settings_from_json("").home == home  # the environment applies
    assert runtime.settings_from_json("{}").home == home
    assert runtime.settings_from_json('{"home": "/x"}').home == Path("/x")
    with pytest.raises(ConfigError, match="not valid JSON"):
        runtime.settings_from_json("{home: 1}")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        runtime.settings_from_json("[1]")
    with pytest.raises(ConfigError, match=r"quality\.max_quarantine_rate"):
        runtime.settings_from_json('{"quality": {"max_quarantine_rate": 2}}')


def test_nothing_new_is_a_noop_end_to_end(home: Path, arts):
    sj = json.dumps({"home": str(home)})
    batch, checked, metrics, report, loaded = (
        arts(n) for n in ("batch", "checked", "qm", "report.html", "lm")
    )
    meta = etl_runtime.transform_step(batch, now="2026-01-04T00:00:00Z", settings_json=sj)
    assert meta["status"] == "noop" and batch.metadata["run_id"] == ""
    assert etl_runtime.is_noop(Batch.load(batch.path))
    etl_runtime.quality_check_step(batch, checked, metrics, report, sj)
    assert checked.metadata["status"] == "noop"
    assert {k: metrics.metadata[k] for k in runtime.ACCOUNTING_METRICS} == dict.fromkeys(
        runtime.ACCOUNTING_METRICS, 0
    )
    assert "Nothing to check" in Path(report.path).read_text()
    result = etl_runtime.load_step(checked, loaded, sj)
    assert result["status"] == "noop" and loaded.metadata["status"] == "noop"
    assert loaded.metadata["loaded"] == 0 and loaded.metadata["manifest_uri"] == ""


def test_ingest_files_from_a_prefix_skips_hidden_and_unknown_files(lake, arts):
    landed = arts("landed")
    rows = ingest_runtime.ingest_files_step(landed, [], str(lake.drop), "files", lake.settings_json)
    assert [Path(r["uri"]).suffix for r in rows] == [".jsonl"] and rows[0]["created"]
    assert storage.read_json(landed.path) == rows == runtime.read_landed(landed)
    assert landed.metadata["objects"] == 1 and landed.metadata["status"] == "landed"
    again = arts("again")
    ingest_runtime.ingest_files_step(
        again, [str(lake.drop / "readings-1.jsonl")], "", "files", lake.settings_json
    )
    assert again.metadata["objects"] == 1 and again.metadata["created"] == 0
    nothing = arts("nothing")
    assert ingest_runtime.ingest_files_step(nothing, settings_json=lake.settings_json) == []
    assert nothing.metadata["status"] == "skipped"


def test_skipped_sources_land_nothing(lake, arts):
    api, stream = arts("api"), arts("stream")
    assert ingest_runtime.ingest_api_step(api, url="", settings_json=lake.settings_json) == []
    assert api.metadata["status"] == "skipped" and storage.read_json(api.path) == []
    assert (
        ingest_runtime.ingest_stream_step(stream, enabled=False, settings_json=lake.settings_json)
        == []
    )
    assert stream.metadata["status"] == "skipped"
    with pytest.raises(ConfigError, match="api_config_json"):
        ingest_runtime.ingest_api_step(
            arts("bad"), url="http://x", api_config_json="{", settings_json="{}"
        )


def test_quality_gate_raises_with_its_message(lake, arts):
    sj = lake.settings_json_with(quality={"max_quarantine_rate": 0.0})
    ingest_runtime.ingest_files_step(arts("landed"), [], str(lake.drop), "files", sj)
    batch = arts("batch")
    assert etl_runtime.transform_step(batch, settings_json=sj)["status"] == "pending"
    with pytest.raises(DataQualityError, match=r"above the threshold of 0\.0%"):
        etl_runtime.quality_check_step(batch, arts("checked"), arts("m"), arts("r"), sj)


def test_now_must_be_iso(home: Path, arts):
    with pytest.raises(ConfigError, match="ISO 8601"):
        etl_runtime.transform_step(arts("b"), now="yesterday", settings_json="{}")
