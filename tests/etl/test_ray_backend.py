"""The ETL's Ray backend commits exactly what the local backend commits.

Both backends run on two lakes fed the same raw bytes: clean objects sharing a row, the
hostile corpus (every bad object and record kind), then a later run with a new day, exact
copies of loaded rows and changed ones (uniqueness across runs and partitions, windows
recomputed over committed days). The Ray runs go through a local Ray cluster of 2 CPUs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.etl import run_etl
from mlops_kit.etl.errors import DataQualityError
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of
from tests.etl.conftest import NOW
from tests.etl.ray_lake import committed, first_files, lake_at, land, second_files

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    from mlops_kit.compute import ray_session

    ray = ray_session(load_settings(ray={"num_cpus": 2}))
    yield
    ray.shutdown()


def test_ray_backend_commits_the_local_backends_rows(ray_cluster: None, tmp_path: Path) -> None:
    local = lake_at(tmp_path / "local", "local")
    on_ray = lake_at(tmp_path / "ray", "ray")
    first, second = first_files(tmp_path / "in1"), second_files(tmp_path / "in2")
    stages: list[tuple[str, int, int]] = []
    for paths in (first, second):
        land(local, paths)
        land(on_ray, paths)
        a = run_etl(local, now=NOW)
        b = run_etl(on_ray, now=NOW, progress=lambda *s: stages.append(s))
        assert a.status == b.status == "committed"
        assert (a.rows_in, a.loaded, a.quarantined, a.duplicates_dropped) == (
            b.rows_in,
            b.loaded,
            b.quarantined,
            b.duplicates_dropped,
        )
        assert a.quarantined_by_reason == b.quarantined_by_reason
        assert b.rows_in == b.loaded + b.quarantined + b.duplicates_dropped
    want, got = committed(local), committed(on_ray)
    # the inputs exercise what they claim to
    acc = want["accounting"]
    assert acc[0]["objects_quarantined"] > 0 and acc[0]["quarantined"] > 0
    assert acc[1]["duplicates_dropped"] > 0
    assert acc[1]["quarantined_by_reason"].get("duplicate_key", 0) > 0
    for name in ("readings", "features", "quarantine"):
        assert got[name].num_rows == want[name].num_rows > 0, name
        assert got[name].equals(want[name]), name
    assert got["warehouse"] == want["warehouse"]
    assert got["accounting"] == want["accounting"]
    assert got["feature_rows"] == want["feature_rows"]
    # progress went through every stage to its end
    assert ("extract", 4, 4) in stages and ("quality", 3, 3) in stages
    assert ("transform", 3, 3) in stages
    assert ("commit", 1, 1) in stages
    # a run with nothing new is a no-op on both
    assert run_etl(on_ray, now=NOW).status == "noop"


def test_the_manifest_records_where_and_how_long_each_stage_ran(
    ray_cluster: None, tmp_path: Path
) -> None:
    local = lake_at(tmp_path / "local", "local")
    on_ray = lake_at(tmp_path / "ray", "ray")
    for s in (local, on_ray):
        land(s, first_files(tmp_path / f"in-{s.etl.backend}"))
        run_etl(s, now=NOW)
    (m_local,) = manifests(layout_of(local))
    (m_ray,) = manifests(layout_of(on_ray))
    assert m_local["execution"]["backend"] == "local"
    assert set(m_local["execution"]["stages"]) == {"extract", "quality", "transform", "load"}
    ex = m_ray["execution"]
    assert (ex["backend"], ex["workers"], ex["partitions"], ex["cluster_cpus"]) == (
        "ray",
        2,
        3,
        2,
    )
    assert set(ex["stages"]) == {"extract", "quality", "transform", "commit"}
    assert ex["stages"]["extract"]["tasks"] == 4
    assert ex["stages"]["quality"]["tasks"] == ex["stages"]["transform"]["tasks"] == 3
    for stage in ex["stages"].values():
        assert stage["wall_s"] >= 0 and stage["cpu_s"] >= 0
    assert 1 <= ex["stages"]["quality"]["workers"] <= 3


def test_over_the_quality_gate_nothing_is_committed_or_left_staged(
    ray_cluster: None, tmp_path: Path
) -> None:
    s = lake_at(tmp_path / "ray", "ray")
    s = s.model_copy(update={"quality": s.quality.model_copy(update={"max_quarantine_rate": 0.0})})
    land(s, first_files(tmp_path / "in"))
    with pytest.raises(DataQualityError):
        run_etl(s, now=NOW)
    layout = layout_of(s)
    assert manifests(layout) == []
    assert storage.list_files(layout.staging_root) == []


@pytest.mark.aws
def test_on_s3_the_ray_backend_commits_the_local_backends_rows(
    ray_cluster: None, s3_bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    """The lake on S3 (moto's server over HTTP, reached from the Ray workers too): JSON
    lines, CSV and Parquet objects committed alike by both backends."""
    import pyarrow.csv as pv
    from iot_fleet import to_raw_records

    from tests.etl.conftest import small_readings

    def on_s3(name: str, backend: str) -> Settings:
        return lake_at(
            tmp_path / name,
            backend,
            profile="aws",
            aws={"region": "us-east-1", "endpoint_url": moto_endpoint},
            storage={
                "raw_uri": f"s3://{s3_bucket}/{name}/raw",
                "processed_uri": f"s3://{s3_bucket}/{name}/processed",
            },
            warehouse={"url": f"duckdb:///{tmp_path / name / 'wh.duckdb'}"},
        )

    local, on_ray = on_s3("local", "local"), on_s3("ray", "ray")
    drop = tmp_path / "drop"
    drop.mkdir()
    jsonl = to_raw_records(small_readings(days=1), bad_rate=0.05, seed=4)
    (drop / "a.jsonl").write_bytes(jsonl.to_bytes())
    pv.write_csv(small_readings(days=1, start_day=2, seed=5), drop / "b.csv")
    paths = [drop / "a.jsonl", drop / "b.csv", *first_files(tmp_path / "in")[:2]]
    for s in (local, on_ray):
        land(s, paths)
        assert run_etl(s, now=NOW).status == "committed"
    want, got = committed(local), committed(on_ray)
    for name in ("readings", "features", "quarantine"):
        assert got[name].num_rows == want[name].num_rows > 0, name
        assert got[name].equals(want[name]), name
    assert got["warehouse"] == want["warehouse"]
    assert got["accounting"] == want["accounting"]
    assert storage.list_files(layout_of(on_ray).staging_root) == []


def test_an_entity_lands_in_one_partition_whatever_its_encoding() -> None:
    import pyarrow as pa

    from mlops_kit.etl.ray_backend import partition_of

    ids = ["dev-0001", "dev-0002", "dev-0003", "dev-0001"] * 50
    plain = partition_of(pa.array(ids), 7)
    assert plain.tolist() == partition_of(pa.array(ids).dictionary_encode(), 7).tolist()
    assert plain.tolist() == partition_of(pa.chunked_array([ids[:3], ids[3:]]), 7).tolist()
    assert plain[0] == plain[3] and set(plain.tolist()) <= set(range(7))
    numbers = [17, 4, 99, 17] * 10
    wide = partition_of(pa.array(numbers, pa.int64()), 5)
    assert wide.tolist() == partition_of(pa.array(numbers, pa.int32()), 5).tolist()
    # many ids spread over every partition
    spread = partition_of(pa.array([f"dev-{i:05d}" for i in range(2000)]), 4)
    assert set(spread.tolist()) == {0, 1, 2, 3}
