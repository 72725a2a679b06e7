"""The processed zone's commit protocol driven directly on local files: staging names, the
journal, the manifest as the commit point, roll-forward after a stop at each step, the
live files and the consumed inputs read back from the manifests.

A stop is simulated by raising from the protocol's fault hook (nothing in
:mod:`mlops_kit.etl.lake` catches it, so what is on disk is what a kill there leaves);
``tests/etl/test_crash_and_backends.py`` kills real processes at the same points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_kit.etl import lake

POINTS = [
    "etl.after_journal",
    "etl.mid_moves",
    "etl.after_moves",
    "etl.after_warehouse",
    "etl.after_manifest",
]


class Stop(BaseException):
    """A stop at a fault point."""


@pytest.fixture
def layout(tmp_path: Path) -> lake.Layout:
    return lake.Layout(
        str(tmp_path / "processed"),
        str(tmp_path / "quarantine"),
        str(tmp_path / "reports"),
        str(tmp_path / "state"),
    )


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layout_paths(layout: lake.Layout, tmp_path: Path) -> None:
    state = tmp_path / "state" / "etl"
    assert layout.manifests == str(state / "manifests")
    assert layout.journals == str(state / "journal")
    assert layout.staging("r1") == str(state / "staging" / "r1")
    assert layout.staging_root == str(state / "staging")


def test_staged_names_keep_order_writers_and_the_final_name(
    layout: lake.Layout, tmp_path: Path
) -> None:
    c = lake.Commit(layout, "r1")
    t = pa.table({"x": [1, 2]})
    a = c.stage(str(tmp_path / "processed" / "readings" / "a.parquet"), t)
    b = c.stage(str(tmp_path / "processed" / "readings" / "b.parquet"), t, prefix="p0001-")
    raw = c.stage_bytes(str(tmp_path / "processed" / "notes" / "n.json"), b'{"k": 1}')
    staging = Path(layout.staging("r1"))
    assert [a, b, raw] == [
        str(staging / "000000-a.parquet"),
        str(staging / "p0001-000001-b.parquet"),
        str(staging / "000002-n.json"),
    ]
    assert pq.read_table(a).equals(t) and Path(raw).read_bytes() == b'{"k": 1}'
    assert [dst.rsplit("/", 1)[1] for _, dst in c.moves] == ["a.parquet", "b.parquet", "n.json"]
    assert c.journal_uri() == str(tmp_path / "state" / "etl" / "journal" / "r1.json")


def _run(
    layout: lake.Layout, tmp_path: Path, run_id: str, seq: int, name: str, replaces: list[str]
) -> tuple[lake.Commit, dict[str, Any], str]:
    c = lake.Commit(layout, run_id, warehouse={"run_id": run_id, "rows": seq})
    final = str(tmp_path / "processed" / "readings" / name)
    c.stage(final, pa.table({"seq": [seq]}))
    c.replace(replaces)
    manifest = {
        "run_id": run_id,
        "committed_seq": seq,
        "inputs": [f"raw/{run_id}"],
        "outputs": {"readings": {"added": [final], "removed": replaces}},
    }
    return c, manifest, final


def test_a_commit_moves_loads_writes_the_manifest_and_cleans_up(
    layout: lake.Layout, tmp_path: Path
) -> None:
    loads: list[dict[str, Any]] = []
    c1, m1, f1 = _run(layout, tmp_path, "r1", 1, "a.parquet", [])
    c1.commit(m1, loads.append)
    c2, m2, f2 = _run(layout, tmp_path, "r2", 2, "b.parquet", [f1])
    c2.commit(m2, loads.append)
    assert loads == [{"run_id": "r1", "rows": 1}, {"run_id": "r2", "rows": 2}]
    assert _files(tmp_path / "processed") == ["readings/b.parquet"]
    assert _files(tmp_path / "state") == [
        "etl/manifests/00000001-r1.json",
        "etl/manifests/00000002-r2.json",
    ]
    assert lake.manifests(layout) == [m1, m2]
    assert lake.live_files(layout, "readings") == [f2]
    assert lake.live_files(layout, "features") == []
    assert lake.open_commits(layout) == []
    assert pq.read_table(f2)["seq"].to_pylist() == [2]


def test_no_warehouse_no_load(layout: lake.Layout, tmp_path: Path) -> None:
    c, m, _ = _run(layout, tmp_path, "r1", 1, "a.parquet", [])
    c.warehouse = None
    c.commit(m, lambda w: pytest.fail("loaded without a warehouse step"))
    assert lake.manifests(layout) == [m]


@pytest.mark.parametrize("point", POINTS)
def test_a_stop_at_each_step_is_rolled_forward_by_recover(
    layout: lake.Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    loads: list[dict[str, Any]] = []
    c1, m1, f1 = _run(layout, tmp_path, "r1", 1, "a.parquet", [])
    c1.commit(m1, loads.append)
    c2, m2, _ = _run(layout, tmp_path, "r2", 2, "b.parquet", [f1])
    c2.stage(str(tmp_path / "processed" / "readings" / "c.parquet"), pa.table({"seq": [3]}))
    m2["outputs"]["readings"]["added"].append(
        str(tmp_path / "processed" / "readings" / "c.parquet")
    )

    def stop_at(p: str) -> None:
        if p == point:
            raise Stop(p)

    monkeypatch.setattr(lake, "maybe_fail", stop_at)
    with pytest.raises(Stop):
        c2.commit(m2, loads.append)
    committed = point == "etl.after_manifest"
    moved = {"etl.after_journal": [], "etl.mid_moves": ["b"]}.get(point, ["b", "c"])
    left = ["a"]  # replaced files go after the commit point
    assert _files(tmp_path / "processed") == sorted(f"readings/{n}.parquet" for n in left + moved)
    assert lake.live_files(layout, "readings") == (
        m2["outputs"]["readings"]["added"] if committed else [f1]
    )
    assert lake.open_commits(layout) == ["r2"]
    assert json.loads(Path(c2.journal_uri()).read_text())["moves"] == [list(m) for m in c2.moves]
    monkeypatch.setattr(lake, "maybe_fail", lambda p: None)
    # a stray staging folder of a run that never reached its journal goes
    stray = Path(layout.staging("r9")) / "000000-x.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    assert lake.recover(layout, loads.append) == ["r2"]
    assert lake.open_commits(layout) == []
    assert lake.manifests(layout) == [m1, m2]  # written once
    assert lake.live_files(layout, "readings") == m2["outputs"]["readings"]["added"]
    assert _files(tmp_path / "processed") == ["readings/b.parquet", "readings/c.parquet"]
    assert not Path(layout.staging_root).exists()
    warehouse_done = point in ("etl.after_warehouse", "etl.after_manifest")
    assert loads == [c1.warehouse, *([c2.warehouse] if warehouse_done else []), c2.warehouse]
    assert lake.recover(layout, loads.append) == []


def test_recover_keeps_journaled_staging_until_rolled_and_ignores_nothing(
    layout: lake.Layout, tmp_path: Path
) -> None:
    assert lake.recover(layout, lambda w: None) == []
    assert not Path(layout.staging_root).exists()
    keep = Path(layout.staging("r1")) / "a" / "000000-x.parquet"
    keep.parent.mkdir(parents=True)
    keep.write_bytes(b"x")
    drop = Path(layout.staging("r2")) / "000000-y.parquet"
    drop.parent.mkdir(parents=True)
    drop.write_bytes(b"y")
    journal = {
        "run_id": "r1",
        "moves": [[str(keep), str(tmp_path / "processed" / "x.parquet")]],
        "deletes": [],
        "warehouse": None,
        "manifest": {"run_id": "r1", "committed_seq": 1},
    }
    Path(layout.journals).mkdir(parents=True)
    Path(layout.journals, "r1.json").write_text(json.dumps(journal))
    assert lake.open_commits(layout) == ["r1"]
    assert lake.recover(layout, lambda w: pytest.fail("no warehouse step")) == ["r1"]
    assert (tmp_path / "processed" / "x.parquet").read_bytes() == b"x"
    assert not drop.exists() and not Path(layout.staging_root).exists()
    assert [m["run_id"] for m in lake.manifests(layout)] == ["r1"]


def test_recover_leaves_a_staging_root_that_still_holds_files(
    layout: lake.Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Path(layout.staging("r1")) / "000000-x.parquet"
    held.parent.mkdir(parents=True)
    held.write_bytes(b"x")
    journal = {
        "run_id": "r1",
        "moves": [],
        "deletes": [],
        "warehouse": None,
        "manifest": {"run_id": "r1", "committed_seq": 1},
    }
    Path(layout.journals).mkdir(parents=True)
    Path(layout.journals, "r1.json").write_text(json.dumps(journal))
    # the roll-forward stops before cleaning up: the journaled staging must survive it
    monkeypatch.setattr(
        lake,
        "maybe_fail",
        lambda p: (_ for _ in ()).throw(Stop(p)) if p == "etl.after_manifest" else None,
    )
    with pytest.raises(Stop):
        lake.recover(layout, lambda w: None)
    assert held.exists()


def test_live_files_follow_added_and_removed_in_order(layout: lake.Layout) -> None:
    from mlops_kit import storage

    def manifest(seq: int, added: list[str], removed: list[str]) -> None:
        m = {
            "run_id": f"r{seq}",
            "committed_seq": seq,
            "outputs": {"t": {"added": added, "removed": removed}},
        }
        storage.write_json(f"{layout.manifests}/{seq:08d}-r{seq}.json", m)

    manifest(1, ["a", "b"], [])
    manifest(2, ["c"], ["a"])
    manifest(3, ["a"], ["zz"])  # re-added; removing an unknown file is harmless
    assert lake.live_files(layout, "t") == ["b", "c", "a"]
    storage.write_json(f"{layout.manifests}/00000004-r4.json", {"run_id": "r4", "committed_seq": 4})
    assert lake.live_files(layout, "t") == ["b", "c", "a"]


def test_processed_inputs_and_releases(layout: lake.Layout) -> None:
    from mlops_kit import storage

    for seq, inputs in ((1, ["raw/a", "raw/b"]), (2, ["raw/c"])):
        storage.write_json(
            f"{layout.manifests}/{seq:08d}-r{seq}.json",
            {"run_id": f"r{seq}", "committed_seq": seq, "inputs": inputs},
        )
    assert lake.processed_inputs(layout) == {"raw/a", "raw/b", "raw/c"}
    where = lake.write_release(layout, {"uri": "raw/a", "after_seq": 2, "encoding": "latin-1"})
    assert (
        where.startswith(f"{layout.state_uri}/etl/releases/")
        and len(where.rsplit("/", 1)[1]) == 32 + 5
    )
    assert lake.write_release(layout, {"uri": "raw/a", "after_seq": 2}) == where  # one per object
    lake.write_release(layout, {"uri": "raw/b", "after_seq": 2, "encoding": "utf-16"})
    assert lake.releases(layout)["raw/b"] == {"uri": "raw/b", "after_seq": 2, "encoding": "utf-16"}
    assert lake.processed_inputs(layout) == {"raw/c"}  # released: pending again
    storage.write_json(
        f"{layout.manifests}/00000003-r3.json",
        {"run_id": "r3", "committed_seq": 3, "inputs": ["raw/a"]},
    )
    assert lake.processed_inputs(layout) == {"raw/a", "raw/c"}  # consumed again after the release
    lake.write_release(layout, {"uri": "raw/c", "after_seq": 1})  # released before its run
    assert lake.processed_inputs(layout) == {"raw/a", "raw/c"}
    lake.write_release(layout, {"uri": "raw/c", "after_seq": 2})  # released after its run
    assert lake.processed_inputs(layout) == {"raw/a"}
    storage.write_json(f"{layout.manifests}/00000005-r5.json", {"run_id": "r5", "committed_seq": 5})
    assert lake.processed_inputs(layout) == {"raw/a"}  # a run that consumed nothing
    for folder in (layout.manifests, layout.journals, f"{layout.state_uri}/etl/releases"):
        storage.write_bytes(f"{folder}/partial.json.tmp", b"{not json")  # not a record
    assert len(lake.manifests(layout)) == 4 and lake.open_commits(layout) == []
    assert set(lake.releases(layout)) == {"raw/a", "raw/b", "raw/c"}
    assert lake.recover(layout, lambda w: None) == []


def test_staging_passes_parquet_options_through(layout: lake.Layout, tmp_path: Path) -> None:
    c = lake.Commit(layout, "r1")
    staged = c.stage(str(tmp_path / "x.parquet"), pa.table({"x": [1, 2, 3]}), compression="gzip")
    assert pq.ParquetFile(staged).metadata.row_group(0).column(0).compression == "GZIP"
