"""The feature store reads what the ETL committed, never a commit half done."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from iot_fleet import (
    GeneratorConfig,
    device_registry,
    generate_readings,
    to_raw_records,
)

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.data.spec import default_spec
from mlops_kit.etl import read_table, run_etl, write_device_registry
from mlops_kit.etl.lake import live_files, open_commits
from mlops_kit.etl.run import layout_of
from mlops_kit.features.errors import SourceNotCommittedError
from mlops_kit.features.store import FeatureClient
from mlops_kit.ingest.raw_zone import land

FEATURES = default_spec().feature_table

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)
REFS = ["device_hourly:temperature_mean_1h", "device_daily:readings_24h"]

_RUN = textwrap.dedent(
    f"""
    from datetime import datetime, timezone
    from mlops_kit.config import load_settings
    from mlops_kit.etl import run_etl
    run_etl(load_settings(), now=datetime.fromisoformat({NOW.isoformat()!r}))
    """
)


def _lake(home: Path) -> tuple[Settings, list[pa.Table]]:
    """A lake with the first half of a day committed; the second half waits to be landed
    (it rewrites the same day's feature file)."""
    s = load_settings(home=home)
    write_device_registry(s, device_registry(3))
    readings = generate_readings(GeneratorConfig(n_devices=3, start=T0, freq_s=900, steps=96))
    cut = pc.less(readings["ts"], pa.scalar(T0 + timedelta(hours=12), readings["ts"].type))
    first, second = readings.filter(cut), readings.filter(pc.invert(cut))
    land(s.storage.raw_uri or "", "files", to_raw_records(first).to_bytes(), "jsonl")
    assert run_etl(s, now=NOW).status == "committed"
    return s, [first, second]


def _labels(s: Settings) -> pa.Table:
    feats = read_table(s, FEATURES)
    return feats.select(["device_id", "event_timestamp"])


def _kill_commit(s: Settings, home: Path, point: str) -> None:
    config = home / "mlops_kit.yaml"
    config.write_text(yaml.safe_dump({"home": str(home)}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env.update(MLOPS_KIT_CONFIG=str(config), MLOPS_KIT_FAULT_AT=point)
    proc = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr


@pytest.mark.slow
def test_an_interrupted_commit_is_refused_until_the_next_run_completes_it(
    tmp_path: Path,
) -> None:
    s, (_, second) = _lake(tmp_path)
    client = FeatureClient(s)
    client.apply()
    before = client.training_set(_labels(s), features=REFS, missing="keep")
    assert before.accounting["complete"] == before.accounting["rows_in"] > 0
    land(s.storage.raw_uri or "", "files", to_raw_records(second).to_bytes(), "jsonl")
    # the rewritten day's new file is in the folder, the old one not yet deleted
    _kill_commit(s, tmp_path, "etl.after_moves")
    layout = layout_of(s)
    assert open_commits(layout)
    in_folder = storage.list_files(client.placement.source_uri, ".parquet")
    assert len(in_folder) == len(live_files(layout, FEATURES)) + 1
    for read in (
        lambda: client.training_set(_labels(s), features=REFS),
        lambda: client.materialize(end=NOW),
        client.source_files,
    ):
        with pytest.raises(SourceNotCommittedError, match="mlops-kit etl run"):
            read()
    assert run_etl(s, now=NOW).status == "noop"  # rolled forward, nothing left to do
    assert not open_commits(layout)
    files = client.source_files()
    assert files == live_files(layout, FEATURES) and len(files) == 1
    labels = _labels(s)
    after = client.training_set(labels, features=REFS, missing="keep")
    assert after.table.num_rows == labels.num_rows == 3 * 24
    assert after.accounting["complete"] == labels.num_rows
    assert client.materialize(end=NOW).status == "materialized"


def test_files_no_run_committed_are_refused_by_name(tmp_path: Path) -> None:
    s, _ = _lake(tmp_path)
    client = FeatureClient(s)
    (committed,) = client.source_files()
    stray = committed.replace("part-", "part-copied-")
    storage.write_bytes(stray, storage.read_bytes(committed))
    with pytest.raises(SourceNotCommittedError, match="no committed ETL run wrote") as err:
        client.source_files()
    assert err.value.details["extra"] == [storage.resolve(stray)[1]]
    storage.delete(stray)
    storage.delete(committed)
    with pytest.raises(SourceNotCommittedError, match=r"committed file.* missing"):
        client.source_files()


def test_a_read_that_overlaps_a_commit_is_done_again(tmp_path: Path) -> None:
    s, (_, second) = _lake(tmp_path)
    client = FeatureClient(s)
    files = client.source_files()
    calls = []

    def read() -> int:
        calls.append(len(calls))
        if len(calls) == 1:  # an ETL run commits while the first read is under way
            land(s.storage.raw_uri or "", "files", to_raw_records(second).to_bytes(), "jsonl")
            assert run_etl(s, now=NOW).status == "committed"
        return len(calls)

    assert client._read_consistently(files, read) == 2
    assert calls == [0, 1]


def test_a_source_of_its_own_is_listed_as_it_is(tmp_path: Path) -> None:
    """A feature source the ETL does not manage is read as the folder holds it."""
    s, _ = _lake(tmp_path)
    source = str(tmp_path / "elsewhere" / FEATURES)
    (committed,) = FeatureClient(s).source_files()
    storage.write_bytes(storage.join(source, "a.parquet"), storage.read_bytes(committed))
    own = FeatureClient(load_settings(home=tmp_path, features={"source_uri": source}))
    assert own.source_files() == [storage.join(source, "a.parquet")]
