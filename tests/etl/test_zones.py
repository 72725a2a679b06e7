"""The lake's zones driven directly: layouts and table names from the settings, committed
tables read back in the spec's schema, date partitions, the warehouse and its password,
quarantined records with their text as received, the spec a lake accepts, where a run
stages its processed files, and the feature days it recomputes."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.data.errors import DatasetSpecError
from mlops_kit.etl import lake, run
from mlops_kit.etl import zones as z
from mlops_kit.etl.extract import QUARANTINE_SCHEMA, ReadOptions
from mlops_kit.etl.run import run_etl
from mlops_kit.etl.warehouse import DuckDBWarehouse, PostgresWarehouse

from .conftest import NOW
from .test_accounting import GOOD, land_mixed, put, rec

TS = pa.timestamp("us", tz="UTC")
SPEC = Path(z.__file__).parents[1] / "data" / "datasets" / "iot_readings.yaml"


@pytest.fixture
def mixed(settings: Settings) -> Settings:
    return land_mixed(settings)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def test_names_and_layout_come_from_the_settings(home: Path) -> None:
    s = load_settings(home=home)
    assert z.record_layout_of(s).spec.name == "iot_readings"
    assert z.record_layout_of(s).key == "device_id"
    assert z.features_table(s) == z.warehouse_table(s) == "device_features_hourly"
    s.warehouse.table = "wh_features"
    assert (z.features_table(s), z.warehouse_table(s)) == ("device_features_hourly", "wh_features")
    other = load_settings(home=home, dataset="machine_telemetry")
    assert z.record_layout_of(other).key == "machine_id"
    assert z.features_table(other) == z.warehouse_table(other) == "machine_features"
    lake_dir = home / "lake"
    assert z.layout_of(s) == lake.Layout(
        processed_uri=str(lake_dir / "processed"),
        quarantine_uri=str(lake_dir / "quarantine"),
        reports_uri=str(lake_dir / "reports"),
        state_uri=str(lake_dir / "_state"),
    )


def test_read_table_filters_dates_and_keeps_the_schema(mixed: Settings) -> None:
    records = z.record_layout_of(mixed)
    assert z.read_table(mixed, z.READINGS).schema.equals(records.reading_schema)
    assert z.read_table(mixed, z.READINGS).num_rows == 0
    assert z.read_table(mixed, "device_features_hourly").schema.equals(records.features_schema)
    assert z.read_table(mixed, z.QUARANTINE).schema.equals(QUARANTINE_SCHEMA)
    run_etl(mixed, now=NOW)
    all_rows = z.read_table(mixed, z.READINGS)
    assert all_rows.schema.equals(records.reading_schema) and all_rows.num_rows == 4
    jan2 = z.read_table(mixed, z.READINGS, {date(2026, 1, 2)})
    assert jan2["ts"].to_pylist() == [at(2026, 1, 2, 0, 15)]
    both = z.read_table(mixed, z.READINGS, {date(2026, 1, 1), date(2026, 1, 2)})
    assert both.num_rows == 4
    none = z.read_table(mixed, z.READINGS, set())
    assert none.num_rows == 0 and none.schema.equals(records.reading_schema)
    assert z.read_table(mixed, z.READINGS, {date(2026, 1, 3)}).num_rows == 0
    features = z.read_table(mixed, "device_features_hourly", {date(2026, 1, 2)})
    assert features.schema.equals(records.features_schema) and features.num_rows > 0
    quarantine = z.read_table(mixed, z.QUARANTINE)
    assert sorted(quarantine["reason"].to_pylist()) == [
        "malformed_json",
        "out_of_range",
        "unknown_entity",
    ]
    assert z.read_table(mixed, z.QUARANTINE, {date(2026, 1, 1)}).num_rows == 0
    assert z.read_table(mixed, z.QUARANTINE, {NOW.date()}).num_rows == 3


def test_read_table_gives_a_column_added_since_as_nulls(mixed: Settings, tmp_path: Path) -> None:
    run_etl(mixed, now=NOW)
    mixed.dataset = _spec(tmp_path, "noisy", "  failure: {", "  noise: {type: float}\n  failure: {")
    rows = z.read_table(mixed, z.READINGS)
    assert rows.schema.equals(z.record_layout_of(mixed).reading_schema)
    assert rows["noise"].to_pylist() == [None] * 4
    assert sorted(rows["device_id"].to_pylist()) == ["dev-0000"] * 2 + ["dev-0001"] * 2


def test_conform_puts_a_table_in_the_schema() -> None:
    schema = pa.schema([("a", pa.string()), ("b", pa.float64()), ("c", pa.int64())])
    old = pa.table({"b": pa.array([1, 2], pa.int32()), "x": ["q", "r"], "a": ["u", "v"]})
    got = z._conform(old, schema)
    assert got.schema.equals(schema)
    assert got.to_pylist() == [
        {"a": "u", "b": 1.0, "c": None},
        {"a": "v", "b": 2.0, "c": None},
    ]
    same = pa.table({"a": ["u"], "b": [1.5], "c": [3]}, schema=schema)
    assert z._conform(same, schema) is same


def test_dates_of_and_by_date_split_at_utc_midnight() -> None:
    assert z.dates_of(pa.array([], TS)) == set()
    ts = [at(2026, 1, 1, 23, 59), at(2026, 1, 2), at(2026, 1, 1), at(2026, 1, 3, 12)]
    assert z.dates_of(pa.array(ts, TS)) == {date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)}
    t = pa.table({"ts": pa.array(ts, TS), "n": [0, 1, 2, 3]})
    parts = z.by_date(t, "ts")
    assert {d: p["n"].to_pylist() for d, p in parts.items()} == {
        date(2026, 1, 1): [0, 2],
        date(2026, 1, 2): [1],
        date(2026, 1, 3): [3],
    }
    assert z.by_date(t.slice(0, 0), "ts") == {}


def test_loader_upserts_the_files_by_the_feature_key(mixed: Settings) -> None:
    result = run_etl(mixed, now=NOW)
    files = lake.live_files(z.layout_of(mixed), "device_features_hourly")
    load = z.loader(mixed)
    load({"table": "again", "files": [], "run_id": "a"})
    wh = z.warehouse_of(mixed)
    assert wh.count("again") == 0
    load({"table": "again", "files": files[:1], "run_id": "b"})
    assert wh.count("again") == storage.read_parquet(files[0]).num_rows < result.feature_rows
    load({"table": "again", "files": files, "run_id": "c"})
    load({"table": "again", "files": files[:1], "run_id": "d"})
    assert wh.count("again") == result.feature_rows
    assert {"a", "b", "c", "d"} <= set(wh.loaded_runs())
    assert isinstance(wh, DuckDBWarehouse)
    assert wh.path == str(mixed.home / "warehouse.duckdb")


def test_warehouse_password_from_secrets_manager(home: Path, moto_endpoint: str) -> None:
    s = load_settings(home=home, aws={"endpoint_url": moto_endpoint})
    assert z._warehouse_password(s) is None
    sm = s.aws.client("secretsmanager")
    cases = {
        json.dumps({"username": "u", "password": "pw-1"}): "pw-1",
        json.dumps({"password": 1234}): "1234",
        "plain-secret": "plain-secret",
        json.dumps({"username": "u"}): json.dumps({"username": "u"}),
        "123456": "123456",
        "[1, 2]": "[1, 2]",
    }
    for i, (secret, password) in enumerate(cases.items()):
        arn = sm.create_secret(Name=f"wh-{i}-{home.name}", SecretString=secret)["ARN"]
        s.warehouse.secret_arn = arn
        assert z._warehouse_password(s) == password, secret
    assert isinstance(z.warehouse_of(s), DuckDBWarehouse)
    s.warehouse.url = "postgresql+psycopg://etl@db:5432/lake"
    s.warehouse.secret_arn = sm.describe_secret(SecretId=f"wh-0-{home.name}")["ARN"]
    pg = z.warehouse_of(s)
    assert isinstance(pg, PostgresWarehouse)
    assert (pg.dsn, pg.password) == ("postgresql://etl@db:5432/lake", "pw-1")


def test_read_options_per_released_object(settings: Settings) -> None:
    base, per_object = z.read_options(settings)
    assert base == ReadOptions.from_settings(settings) and per_object == {}
    layout = z.layout_of(settings)
    lake.write_release(layout, {"uri": "s3://r/a.csv", "after_seq": 0, "encoding": "latin-1"})
    lake.write_release(layout, {"uri": "s3://r/b.csv", "after_seq": 0})
    base, per_object = z.read_options(settings)
    assert per_object["s3://r/a.csv"] == base.with_encoding("latin-1")
    assert per_object["s3://r/a.csv"].encoding == "latin-1"
    assert per_object["s3://r/b.csv"] is base and set(per_object) == {
        "s3://r/a.csv",
        "s3://r/b.csv",
    }


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://etl:s3cret@db:5432/lake", "postgresql+psycopg://etl@db:5432/lake"),
        ("postgresql://etl:p@ss:w@db/lake", "postgresql://etl@db/lake"),
        ("postgresql://etl@db/lake", "postgresql://etl@db/lake"),
        ("postgresql://etl:a://b@db/lake", "postgresql://etl@db/lake"),
        ("duckdb:///tmp/wh.duckdb", "duckdb:///tmp/wh.duckdb"),
        ("", ""),
        (None, None),
    ],
)
def test_redact_drops_the_password_of_a_url(url: str | None, shown: str | None) -> None:
    assert z.redact(url) == shown


def _rejected(**cols: list) -> pa.Table:
    n = len(next(iter(cols.values())))
    base = {
        "device_id": [f"dev-{i:04d}" for i in range(n)],
        "temperature": [float(i) for i in range(n)],
        "reason": ["out_of_range"] * n,
        "field": ["temperature"] * n,
        "detail": [f"d{i}" for i in range(n)],
        "_line": [i + 1 for i in range(n)],
    }
    return pa.table({**base, **cols})


def test_quarantine_rows_keep_the_reason_and_the_record_as_received(
    settings: Settings, tmp_path: Path
) -> None:
    assert z.quarantine_rows(settings, _rejected(_source=[]).slice(0, 0)).equals(
        QUARANTINE_SCHEMA.empty_table()
    )
    lines = [rec("dev-0000"), "  " + rec("dev-0001", temperature=999.0), rec("dev-0002")]
    jsonl = put(settings, lines)
    table = pa.table({"device_id": ["p0", "p1"], "temperature": [1.5, 2.5]})
    pq.write_table(table, tmp_path / "x.parquet")
    parquet = storage.join(
        settings.storage.raw_uri or "", "source=f", "date=2026-01-01", "x.parquet"
    )
    storage.write_bytes(parquet, (tmp_path / "x.parquet").read_bytes())
    rejected = _rejected(
        _source=pa.array([jsonl, jsonl, parquet, None, jsonl], pa.large_string()),
        _record=[1, 2, 1, None, 9],
        reason=["out_of_range", "null", "null", "wrong_type", "null"],
    )
    out = z.quarantine_rows(settings, rejected)
    assert out.schema.equals(QUARANTINE_SCHEMA)
    assert out["reason"].to_pylist() == ["out_of_range", "null", "null", "wrong_type", "null"]
    assert out["field"].to_pylist() == ["temperature"] * 5
    assert out["detail"].to_pylist() == ["d0", "d1", "d2", "d3", "d4"]
    assert out["_line"].to_pylist() == [1, 2, 3, 4, 5]
    assert out["_source"].to_pylist() == [jsonl, jsonl, parquet, None, jsonl]
    assert out["record"].to_pylist() == [
        lines[1],
        lines[2],
        json.dumps({"device_id": "p1", "temperature": 2.5}),
        json.dumps({"device_id": "dev-0003", "temperature": 3.0}),
        json.dumps({"device_id": "dev-0004", "temperature": 4.0}),
    ]
    # without record ordinals, each row's values as JSON
    plain = z.quarantine_rows(settings, _rejected(_source=[jsonl, None]))
    assert plain["record"].to_pylist() == [
        json.dumps({"device_id": "dev-0000", "temperature": 0.0}),
        json.dumps({"device_id": "dev-0001", "temperature": 1.0}),
    ]


def test_quarantine_rows_read_a_released_object_in_its_encoding(settings: Settings) -> None:
    line = rec("dev-0000", temperature=999.0).replace('"failure"', '"note": "caf\u00e9", "failure"')
    uri = land_latin1 = storage.join(
        settings.storage.raw_uri or "", "source=f", "date=2026-01-01", "l1.jsonl"
    )
    storage.write_bytes(land_latin1, (line + "\n").encode("latin-1"))
    lake.write_release(z.layout_of(settings), {"uri": uri, "after_seq": 0, "encoding": "latin-1"})
    out = z.quarantine_rows(settings, _rejected(_source=[uri], _record=[0]))
    assert out["record"].to_pylist() == [line]


def test_quarantine_rows_read_in_the_parse_encoding_else_give_the_values(
    settings: Settings,
) -> None:
    """An object not released is read in ``parse.encoding``; a row whose text cannot be
    read back (no source) gives its values as JSON, a timestamp as its text."""
    settings.parse.encoding = "latin-1"
    line = rec("dev-0000", temperature=999.0).replace('"failure"', '"note": "caf\u00e9", "failure"')
    uri = storage.join(settings.storage.raw_uri or "", "source=f", "date=2026-01-01", "l.jsonl")
    storage.write_bytes(uri, (line + "\n").encode("latin-1"))
    ts = pa.array([at(2026, 1, 1, 0, 15), at(2026, 1, 2)], TS)
    out = z.quarantine_rows(settings, _rejected(_source=[uri, None], _record=[0, 3], ts=ts))
    assert out["record"].to_pylist() == [
        line,
        json.dumps(
            {"device_id": "dev-0001", "temperature": 1.0, "ts": "2026-01-02 00:00:00+00:00"}
        ),
    ]


def _spec(tmp_path: Path, name: str, old: str, new: str) -> str:
    path = tmp_path / f"{name}.yaml"
    text = SPEC.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return str(path)


def test_check_spec_evolution_refuses_what_cannot_replace_the_lake(
    settings: Settings, tmp_path: Path
) -> None:
    z.check_spec_evolution(settings)  # an empty lake takes any spec
    put(settings, [rec()])
    first = run_etl(settings, now=NOW).run_id
    z.check_spec_evolution(settings)
    v2 = _spec(tmp_path, "v2", "version: 1", "version: 2")
    renamed = _spec(tmp_path, "renamed", "name: iot_readings", "name: iot_other")
    retyped = _spec(tmp_path, "retyped", "failure: {type: int", "failure: {type: float")
    settings.dataset = renamed
    with pytest.raises(DatasetSpecError) as err:
        z.check_spec_evolution(settings)
    assert err.value.code == "DATASET_SPEC_INVALID"
    assert str(err.value).startswith(
        f"invalid dataset spec iot_other v1 over the lake written by run {first} "
        "(iot_readings v1):\n  name: this data holds dataset 'iot_readings'"
    )
    settings.dataset = retyped
    with pytest.raises(DatasetSpecError) as err:
        z.check_spec_evolution(settings)
    assert err.value.problems == [
        "columns.failure: type changed from int to float without a new version; bump version to 2"
    ]
    settings.dataset = v2
    z.check_spec_evolution(settings)
    put(settings, [rec("dev-0001")])
    second = run_etl(settings, now=NOW).run_id
    # the last run's spec is the one to replace, whatever the runs before it wrote
    settings.dataset = "iot_readings"
    with pytest.raises(DatasetSpecError) as err:
        z.check_spec_evolution(settings)
    assert f"written by run {second} (iot_readings v2)" in str(err.value)
    assert err.value.problems[0].startswith("version: the data was written with iot_readings v2")
    # a manifest without a spec (written before runs kept it) is passed over
    layout = z.layout_of(settings)
    storage.write_json(
        storage.join(layout.manifests, "00000003-old.json"), {"run_id": "old", "committed_seq": 3}
    )
    with pytest.raises(DatasetSpecError, match=f"written by run {second} "):
        z.check_spec_evolution(settings)


def test_staged_rows_add_takes_in_another_writer() -> None:
    a = z.StagedRows(readings=["r1"], features={"2026-01-01": ["f1"]}, feature_rows=3)
    b = z.StagedRows(
        readings=["r2", "r3"], features={"2026-01-01": ["f2"], "2026-01-02": ["f3"]}, feature_rows=4
    )
    a.add(b)
    assert a == z.StagedRows(
        readings=["r1", "r2", "r3"],
        features={"2026-01-01": ["f1", "f2"], "2026-01-02": ["f3"]},
        feature_rows=7,
    )
    assert z.StagedRows() == z.StagedRows(readings=[], features={}, feature_rows=0)


def test_stage_processed_writes_one_file_per_day(settings: Settings) -> None:
    records = z.record_layout_of(settings)
    layout = z.layout_of(settings)
    good = {"temperature": 20.0, "vibration": 1.0, "pressure": 100.0, "humidity": 40.0}
    good |= {"rpm": 1500.0, "voltage": 230.0, "failure": 0}
    readings = pa.Table.from_pylist(
        [
            {"device_id": "dev-0000", "ts": at(2026, 1, 2, 1), **good},
            {"device_id": "dev-0000", "ts": at(2026, 1, 1, 1), **good},
            {"device_id": "dev-0001", "ts": at(2026, 1, 2, 3), **good},
        ],
        schema=records.reading_schema,
    )
    features = {
        date(2026, 1, 2): pa.table({"n": [1, 2]}),
        date(2026, 1, 1): pa.table({"n": [3, 4, 5]}),
    }
    commit = lake.Commit(layout, "rid")
    staged = z.stage_processed(commit, records, readings, features, part="w1")
    root = layout.processed_uri
    assert staged == z.StagedRows(
        readings=[
            f"{root}/readings/date=2026-01-01/part-rid-w1.parquet",
            f"{root}/readings/date=2026-01-02/part-rid-w1.parquet",
        ],
        features={
            "2026-01-01": [f"{root}/device_features_hourly/date=2026-01-01/part-rid-w1.parquet"],
            "2026-01-02": [f"{root}/device_features_hourly/date=2026-01-02/part-rid-w1.parquet"],
        },
        feature_rows=5,
    )
    assert [dst for _, dst in commit.moves] == staged.readings + [
        f for d in ("2026-01-01", "2026-01-02") for f in staged.features[d]
    ]
    assert all(src.rsplit("/", 1)[-1].startswith("w1") for src, _ in commit.moves)
    jan2 = storage.read_parquet(commit.moves[1][0])
    assert jan2["ts"].to_pylist() == [at(2026, 1, 2, 1), at(2026, 1, 2, 3)]
    assert storage.read_parquet(commit.moves[3][0])["n"].to_pylist() == [1, 2]
    meta = pq.ParquetFile(commit.moves[0][0].removeprefix("file://")).metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert cols["device_id"].compression == "SNAPPY"
    assert "RLE_DICTIONARY" in cols["device_id"].encodings
    assert "RLE_DICTIONARY" not in cols["temperature"].encodings
    assert cols["ts"].is_stats_set and not cols["temperature"].is_stats_set
    plain = z.stage_processed(lake.Commit(layout, "r2"), records, readings.slice(1, 1), {})
    assert plain.readings == [f"{root}/readings/date=2026-01-01/part-r2.parquet"]
    assert plain.features == {} and plain.feature_rows == 0


def test_processed_part_names_the_run_and_the_writer(settings: Settings) -> None:
    layout = z.layout_of(settings)
    d = date(2026, 3, 4)
    root = layout.processed_uri
    assert (
        z.processed_part(layout, "t", d, "run-1") == f"{root}/t/date=2026-03-04/part-run-1.parquet"
    )
    assert z.processed_part(layout, "t", d, "run-1", "p3") == (
        f"{root}/t/date=2026-03-04/part-run-1-p3.parquet"
    )


def test_feature_days_reach_as_far_as_the_longest_window(mixed: Settings, tmp_path: Path) -> None:
    d = date(2026, 1, 5)
    jan = [date(2026, 1, k) for k in range(1, 8)]
    assert run.feature_days(mixed, {d}) == ({jan[3], d, jan[5]}, {d})
    assert run.feature_days(mixed, set()) == (set(), set())
    run_etl(mixed, now=NOW)  # the lake now has readings of Jan 1 and Jan 2
    assert run.feature_days(mixed, {jan[0]}) == (
        {date(2025, 12, 31), jan[0], jan[1]},
        {jan[0], jan[1]},
    )
    assert run.feature_days(mixed, {jan[2]}) == ({jan[1], jan[2], jan[3]}, {jan[2]})
    dec31 = date(2025, 12, 31)
    assert run.feature_days(mixed, {dec31})[1] == {dec31, jan[0]}
    # a window longer than a day, even by a second, reaches two days
    for grain, longest in (("1h", "25h"), ("1s", "86401s")):
        long = _spec(tmp_path, f"long-{grain}", "24h: 24h}", f"24h: {longest}}}")
        Path(long).write_text(Path(long).read_text().replace("grain: 1h", f"grain: {grain}"))
        mixed.dataset = long
        around, affected = run.feature_days(mixed, {d})
        assert around == set(jan[2:7]) and affected == {d}, longest


def test_features_for_recomputes_only_the_affected_days(mixed: Settings, tmp_path: Path) -> None:
    run_etl(mixed, now=NOW)
    records = z.record_layout_of(mixed)
    none = records.reading_schema.empty_table()
    jan1, jan2 = date(2026, 1, 1), date(2026, 1, 2)
    assert run.features_for(mixed, none, NOW, {jan1}, set()) == {}
    assert run.features_for(mixed, none, NOW, {date(2026, 3, 1)}, {date(2026, 3, 1)}) == {}
    out = run.features_for(mixed, none, NOW, {jan1, jan2}, {jan1})
    assert list(out) == [jan1]
    assert out[jan1].schema.equals(records.features_schema)
    assert sorted(set(out[jan1]["device_id"].to_pylist())) == ["dev-0000", "dev-0001"]
    assert set(out[jan1]["created_at"].to_pylist()) == {NOW}

    def only_0(t: pa.Table) -> pa.Table:
        return t.filter(pa.compute.equal(t["device_id"], "dev-0000"))

    kept = run.features_for(mixed, none, NOW, {jan1, jan2}, {jan1}, keep=only_0)
    assert set(kept[jan1]["device_id"].to_pylist()) == {"dev-0000"}
    assert kept[jan1].equals(only_0(out[jan1]))
    new = pa.Table.from_pylist(
        [{"device_id": "dev-0003", "ts": datetime(2026, 3, 1, 5, tzinfo=timezone.utc), **GOOD}],
        schema=records.reading_schema,
    )
    got = run.features_for(mixed, new, NOW, {date(2026, 3, 1)}, {date(2026, 3, 1)}, keep=only_0)
    assert set(got[date(2026, 3, 1)]["device_id"].to_pylist()) == {"dev-0003"}
    # the features are the settings' spec's
    mixed.dataset = _spec(tmp_path, "counted", "row_count: readings", "row_count: n")
    counted = run.features_for(mixed, none, NOW, {jan1, jan2}, {jan1})[jan1]
    assert counted.schema.equals(z.record_layout_of(mixed).features_schema)
    assert counted["n_1h"].to_pylist() == out[jan1]["readings_1h"].to_pylist()
