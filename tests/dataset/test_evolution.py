"""Schema evolution: additions pass, a type change or a removed column needs a new version."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_kit.config import load_settings
from mlops_kit.data.generate import SpecGeneratorConfig, generate, to_raw
from mlops_kit.data.spec import DatasetSpecError, load_spec, spec_from_dict
from mlops_kit.data.spec_checks import evolution_problems
from mlops_kit.etl import run_etl
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of
from mlops_kit.ingest.raw_zone import land

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)


def _raw() -> dict[str, Any]:
    return load_spec("machine_telemetry").model_dump(mode="json", exclude_none=True)


def _spec(edit: Any = None) -> Any:
    raw = _raw()
    if edit:
        edit(raw)
    return spec_from_dict(raw)


def test_additions_pass_at_the_same_version() -> None:
    def add(raw: dict[str, Any]) -> None:
        raw["columns"]["vibration"] = {"type": "float", "min": 0, "max": 50}
        raw["aggregations"]["stats"]["vibration"] = ["mean"]
        raw["aggregations"]["windows"]["1d"] = "1d"
        raw["derived"]["vibration_per_amp_2h"] = "vibration_mean_2h / current_mean_2h"

    assert evolution_problems(_spec(), _spec(add)) == []


def test_a_type_change_names_the_column_and_both_types() -> None:
    def retype(raw: dict[str, Any]) -> None:
        raw["columns"]["current"] = {"type": "int", "min": 0, "max": 80}

    (problem,) = evolution_problems(_spec(), _spec(retype))
    assert problem == (
        "columns.current: type changed from float to int without a new version; bump version to 2"
    )
    bumped = _spec(lambda raw: (retype(raw), raw.update(version=2)))
    assert evolution_problems(_spec(), bumped) == []


def test_a_renamed_column_is_a_removal() -> None:
    def rename(raw: dict[str, Any]) -> None:
        raw["columns"]["amps"] = raw["columns"].pop("current")
        raw["aggregations"]["stats"]["amps"] = raw["aggregations"]["stats"].pop("current")
        raw["derived"] = {k: v.replace("current_", "amps_") for k, v in raw["derived"].items()}

    problems = evolution_problems(_spec(), _spec(rename))
    assert problems == [
        "columns.current: removed or renamed (float) without a new version; keep it or "
        "bump version to 2"
    ]


def test_other_dataset_older_version_and_new_windows() -> None:
    iot = load_spec("iot_readings")
    (other,) = evolution_problems(_spec(), iot)
    assert "this data holds dataset 'machine_telemetry', the spec is 'iot_readings'" in other
    v2 = _spec(lambda raw: raw.update(version=2))
    (older,) = evolution_problems(v2, _spec())
    assert "written with machine_telemetry v2, the spec is v1" in older
    (grain,) = evolution_problems(
        _spec(), _spec(lambda raw: raw["aggregations"].update(grain="1h"))
    )
    assert grain.startswith("aggregations.grain: 30m became 1h")


def test_the_etl_refuses_before_any_data_moves(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path / "home", dataset="machine_telemetry")
    spec = load_spec("machine_telemetry")
    table = generate(spec, SpecGeneratorConfig(n_entities=3, start=T0, freq_s=1800, steps=48))
    land(s.storage.raw_uri or "", "files", to_raw(spec, table).to_bytes(), "jsonl")
    assert run_etl(s, now=T0 + timedelta(days=2)).status == "committed"

    raw = _raw()
    raw["columns"]["current"] = {"type": "int", "min": 0, "max": 80}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(raw, sort_keys=False))
    s2 = load_settings(home=tmp_path / "home", dataset=str(changed))
    more = generate(
        spec, SpecGeneratorConfig(n_entities=3, start=T0 + timedelta(days=1), freq_s=1800, steps=4)
    )
    land(s.storage.raw_uri or "", "files", to_raw(spec, more).to_bytes(), "jsonl")
    with pytest.raises(DatasetSpecError) as err:
        run_etl(s2, now=T0 + timedelta(days=2))
    assert "columns.current: type changed from float to int" in str(err.value)
    assert len(manifests(layout_of(s))) == 1  # nothing was written
    # an added column at the same version is fine, and loads the waiting object
    added = _raw()
    added["columns"]["vibration"] = {"type": "float"}
    grown = tmp_path / "grown.yaml"
    grown.write_text(yaml.safe_dump(added, sort_keys=False))
    s3 = load_settings(home=tmp_path / "home", dataset=str(grown))
    assert run_etl(s3, now=T0 + timedelta(days=2)).status == "committed"
