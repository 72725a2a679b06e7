"""Materialization benchmark: Feast's local engine and SQLite store (what a Feast user
gets) vs the batched SQLite store on the local and the Ray engine, same rows.

A day of hourly feature rows (``--rows`` in all, ``--rows / 24`` devices; one Parquet file
per hour, so every device has a row in every file), generated before timing, in the
processed schema of the default spec. In one run, three set-ups materialize both feature
views of that day into a fresh SQLite online store each through
:meth:`mlops_kit.features.FeatureClient.materialize`:

* the baseline: ``features.engine: local`` with ``features.sqlite_writer: feast``
  (Feast's local engine and Feast's ``SqliteOnlineStore``);
* ``features.engine: local`` with the batched store
  (:mod:`mlops_kit.features.sqlite_store`, the default);
* ``features.engine: ray`` with the batched store, on a local Ray cluster of ``--cpus``
  CPUs and as many workers, started before timing.

Then each online store is compared with the baseline's: the tables row by row (every
column's value and type, in SQLite) and every feature of every device through the
online reader.

Each run's time is split into steps, timed in the driver around the functions that do
them: on the local engine Feast's conversion to its online rows and the online writes;
on the Ray engine (see :mod:`mlops_kit.features.ray_engine`) the newest row per entity
on Ray tasks, Feast's read node (reading and sorting the staged rows), its write node
(conversion and online writes, on a worker) and the read-back. ``--feast-alone`` also times
Feast's Ray engine reading the source itself (``pull_latest_features``, one view), the
configuration step 1 replaces.

Writes ``benchmarks/results/materialize.json`` and its section of ``docs/benchmarks.md``
(between the ``materialize`` markers). Run it on a quiet machine: the load average at
the start and the end is in the section.

Usage::

    python benchmarks/materialize.py                   # 1,000,000 rows
    python benchmarks/materialize.py --rows 200000     # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from docsection import cpu_name, write_section

from mlops_kit import storage
from mlops_kit.config import load_settings
from mlops_kit.etl.layout import layout_for
from mlops_kit.features import ray_engine
from mlops_kit.features.store import FeatureClient

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results" / "materialize.json"
START, END = "<!-- materialize:start -->", "<!-- materialize:end -->"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOURS = 24
TARGET = 3.0  # the target: at least 3x Feast's local engine (with its SQLite store)
COLUMNS = "entity_key, feature_name, value, value_text, vector_value, event_ts, created_ts"
RUNS = (
    ("baseline", "local", "feast", "Feast's local engine, Feast's SQLite store (baseline)"),
    ("local", "local", "batched", "Feast's local engine, batched SQLite store"),
    ("ray", "ray", "batched", "Feast's Ray engine, batched SQLite store"),
)
"""(name, ``features.engine``, ``features.sqlite_writer``, description), run in order."""


def lake(source: str, rows: int, seed: int = 0) -> int:
    """``rows // 24`` devices x 24 hourly rows, one file per hour; returns the devices."""
    schema = layout_for().features_schema
    devices = max(1, rows // HOURS)
    ids = pa.array([f"dev-{i:07d}" for i in range(devices)])
    rng = np.random.default_rng(seed)
    for h in range(HOURS):
        cols: dict[str, Any] = {
            "device_id": ids,
            "event_timestamp": pa.array(
                [T0 + timedelta(hours=h + 1)] * devices, pa.timestamp("us", tz="UTC")
            ),
        }
        for field in schema:
            if field.name in cols:
                continue
            if field.name == "created_at":
                cols[field.name] = pa.array([T0 + timedelta(hours=h + 2)] * devices, field.type)
            elif pa.types.is_integer(field.type):
                cols[field.name] = rng.integers(1, 300, devices)
            else:
                cols[field.name] = rng.normal(50, 10, devices)
        table = pa.table(cols).cast(schema)
        storage.write_parquet(storage.join(source, "date=2026-01-01", f"h{h:02d}.parquet"), table)
    return devices


def why(res: dict[str, Any]) -> str:
    """The paragraph on what bounds the figures, with the figures of ``res``."""
    runs = res["runs"]
    conv, writes = STEP_CONVERSION, STEP_WRITES
    base, local, on_ray = runs["baseline"], runs["local"], runs["ray"]
    feast_steps = local["steps"][conv] + local["steps"]["the rest"]
    return (
        f"What bounds these figures. The batched store writes the {res['table_rows']:,} "
        f"SQLite rows in {local['steps'][writes]:.1f} s, Feast's store in "
        f"{base['steps'][writes]:.1f} s ({base['steps'][writes] / local['steps'][writes]:.2f}x). "
        "What is left of a write is SQLite's own work on Feast's layout (every row goes "
        "into three B-trees: the table, its primary key `(entity_key, feature_name)` and "
        "the entity-key index) and building the rows in Python (per value a `ValueProto` "
        "serialized and its text form), by one writer, as SQLite allows; measured apart "
        "(by hand, not by this script) a view of 1,041,650 rows took about 3.1 s in SQLite "
        "and 1.8 s to build. The rest of the local engine is Feast's and untouched: its "
        f"conversion of the rows to protos ({local['steps'][conv]:.1f} s) and reading the "
        "Parquet through its file offline store, the newest row per entity and the "
        f"registry ({local['steps']['the rest']:.1f} s). {TARGET:.0f}x the baseline would be "
        f"{base['seconds'] / TARGET:.1f} s, less than those Feast steps alone "
        f"({feast_steps:.1f} s): on the local engine no write path reaches it. The "
        "Ray engine does not make up for it on 2 cores: Feast's Ray engine reads and sorts "
        f"the staged rows ({on_ray['steps'][STEP_READ]:.1f} s in its read node), and the "
        "staged rows of a view arrive as one block (one `online_write_batch` call per "
        "view, seen by hand), so one task converts and writes the whole view "
        f"({on_ray['steps'][STEP_WRITE_NODE]:.1f} s in the write node, the store's writes "
        "included) and the second CPU has none of that work; each step moves the rows "
        "through pandas and Arrow once more, and the steps run one after the other. Why "
        "one block: every staged row is its entity's newest, so in a backfill they share "
        "one event time; Feast's read node sorts on it, which puts rows of one time in one "
        "block, and Feast's Ray offline store sets Ray Data's block size to 128 MiB at "
        "every read (`RayResourceManager.configure_ray_context`), overwriting a smaller "
        "size set before the call (tried by hand). A view is split into several write "
        "tasks only beyond 128 MiB of staged rows, as on a cluster's larger views, each "
        "block then written by its own task (`write_concurrency` is `ray.workers` on "
        f"DynamoDB). Nor would splitting reach the target here: the Ray engine's steps "
        f"took {sum(v for k, v in on_ray['steps'].items() if k != 'the rest'):.1f} s one "
        "after the other, each keeping about one core busy; spread perfectly over the 2 "
        f"cores that is {sum(v for k, v in on_ray['steps'].items() if k != 'the rest') / 2:.1f} s, "
        f"above the {base['seconds'] / TARGET:.1f} s that {TARGET:.0f}x needs."
    )


STEP_CONVERSION = "Feast's conversion to its online rows (protos)"
STEP_WRITES = "online writes (`online_write_batch`)"
STEP_READ = "Feast's Ray engine: read and sort the staged rows (read node)"
STEP_WRITE_NODE = "Feast's Ray engine: conversion and online writes on a worker (write node)"


class Steps:
    """Wall time spent in some functions while open, timed by wrapping them.

    Args:
        targets: step name -> (module or class, attribute): the function that does it.
            A step called inside another is counted in both.
    """

    def __init__(self, targets: dict[str, tuple[Any, str]]) -> None:
        self.seconds = dict.fromkeys(targets, 0.0)
        self._saved: list[tuple[Any, str, Any, bool]] = []
        for step, (owner, attr) in targets.items():
            original = getattr(owner, attr)
            self._saved.append((owner, attr, original, attr in vars(owner)))
            setattr(owner, attr, self._timed(step, original))

    def _timed(self, step: str, original: Any) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                self.seconds[step] += time.perf_counter() - t

        return timed

    def close(self) -> None:
        for owner, attr, original, own in reversed(self._saved):
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)


def steps_of(engine: str, writer: str) -> dict[str, tuple[Any, str]]:
    """What is timed inside a run of ``engine`` with ``writer``."""
    from feast.infra.compute_engines.local import nodes as local_nodes
    from feast.infra.compute_engines.ray import nodes as ray_nodes
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    from mlops_kit.features.sqlite_store import BatchedSqliteOnlineStore

    store = BatchedSqliteOnlineStore if writer == "batched" else SqliteOnlineStore
    if engine == "local":
        return {
            STEP_CONVERSION: (local_nodes, "_convert_arrow_to_proto"),
            STEP_WRITES: (store, "online_write_batch"),
        }
    return {
        "newest rows on Ray tasks": (ray_engine, "stage_newest"),
        STEP_READ: (ray_nodes.RayReadNode, "execute"),
        STEP_WRITE_NODE: (ray_nodes.RayWriteNode, "execute"),
        "read-back": (ray_engine, "check_written"),
    }


def run_engine(
    root: Path, source: str, name: str, engine: str, writer: str, cpus: int
) -> dict[str, Any]:
    settings = load_settings(
        home=root / name,
        features={"source_uri": source, "engine": engine, "sqlite_writer": writer},
        ray={"num_cpus": cpus, "workers": cpus},
    )
    client = FeatureClient(settings)
    t = time.perf_counter()
    client.apply()  # joins (starts) the Ray cluster for the ray engine
    setup = time.perf_counter() - t
    steps = Steps(steps_of(engine, writer))
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = client.materialize(T0 + timedelta(days=1, hours=1))
    finally:
        steps.close()
    seconds = time.perf_counter() - t
    timed = {k: round(v, 3) for k, v in steps.seconds.items()}
    timed["the rest"] = round(seconds - sum(steps.seconds.values()), 3)
    return {
        "seconds": round(seconds, 3),
        "setup_s": round(setup, 3),
        "rows": result.rows,
        "views": {
            k: {"rows": v["rows"], "entities": v["entities"]} for k, v in result.views.items()
        },
        "steps": timed,
        "client": client,
    }


def same_tables(a: FeatureClient, b: FeatureClient) -> dict[str, Any]:
    """Compare the online tables of ``a`` and ``b`` row by row: every column, value and type.

    Returns:
        Rows compared, and the columns in which some row differs (none when equal).
    """
    pa_, pb = a.placement, b.placement
    conn = sqlite3.connect(pa_.online_path or "")
    try:
        conn.execute("ATTACH DATABASE ? AS other", (pb.online_path,))
        rows, differ = 0, set()
        for view in a.catalog.views:
            table = f'"{pa_.project}_{view}"'
            rows += conn.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0]
            for col in COLUMNS.split(", "):
                cols = f"entity_key, feature_name, {col}, typeof({col})"
                for x, y in (("main", "other"), ("other", "main")):
                    q = f"SELECT {cols} FROM {x}.{table} EXCEPT SELECT {cols} FROM {y}.{table}"
                    if conn.execute(f"SELECT EXISTS ({q})").fetchone()[0]:
                        differ.add(col)
    finally:
        conn.close()
    return {"rows": rows, "columns_differing": sorted(differ)}


def same_online(a: FeatureClient, b: FeatureClient, devices: int) -> int:
    """Compare every feature of every device in the two online stores; returns devices."""
    ids = [f"dev-{i:07d}" for i in range(devices)]
    for first in range(0, devices, 5000):
        batch = ids[first : first + 5000]
        x, y = a.online(batch, fast=True), b.online(batch, fast=True)
        assert x.columns == y.columns, f"online rows differ in devices {batch[0]}..{batch[-1]}"
        assert not x.missing, f"devices without an online row: {x.missing[:5]}"
    return devices


def feast_alone(root: Path, source: str, cpus: int) -> float:
    """Feast's Ray engine on one view, reading the source itself with
    ``pull_latest_features`` (a TTL-less copy of the view, so rows older than the TTL
    are written)."""
    from datetime import timedelta as td

    from mlops_kit.features import config as fcfg

    settings = load_settings(
        home=root / "feast-alone",
        features={"source_uri": source, "engine": "ray"},
        ray={"num_cpus": cpus, "workers": cpus},
    )
    base = fcfg.repo_config_dict

    def with_latest(s: Any) -> dict[str, Any]:
        return {**base(s), "materialization": {"pull_latest_features": True}}

    fcfg.repo_config_dict = with_latest  # type: ignore[assignment]
    try:
        client = FeatureClient(settings)
        client.apply()
        store = client.store
        view = store.get_feature_view("device_hourly")
        rows = copy.copy(view)
        rows.ttl = td(0)
        t = time.perf_counter()
        store._get_provider().materialize_single_feature_view(
            config=store.config,
            feature_view=rows,
            start_date=T0,
            end_date=T0 + td(days=1, hours=1),
            registry=store.registry,
            project=store.project,
            tqdm_builder=lambda n: None,
        )
        return time.perf_counter() - t
    finally:
        fcfg.repo_config_dict = base  # type: ignore[assignment]


def render(res: dict[str, Any], argv: list[str]) -> str:
    import feast
    import ray

    runs = res["runs"]
    base = runs["baseline"]["seconds"]
    rows, devices = res["rows"], res["devices"]
    ratio = res["ratio"]
    met = "met" if ratio >= TARGET else "**not met**"
    load0, load1 = res["load_average"]
    on_ray, local = runs["ray"], runs["local"]
    lines = [
        "## Materialization: Feast's local engine and SQLite store vs the batched store "
        "on the local and the Ray engine",
        "",
        f"Command: `python {' '.join(['benchmarks/materialize.py', *argv[1:]])}`.",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, shared with other work: load "
        f"average (1, 5, 15 min) {load0} at the start and {load1} at the end; Python "
        f"{platform.python_version()}, feast {feast.__version__}, ray {ray.__version__}. A "
        f"day of hourly feature rows: {rows:,} rows of {devices:,} devices in 24 Parquet "
        "files (one per hour, every device in each), the default spec's processed schema; "
        f"both feature views ({', '.join(f'`{v}`' for v in res['views'])}; "
        f"{res['table_rows']:,} SQLite rows, one per feature value) into a fresh SQLite "
        "online store per run. The Ray engine runs on a local Ray cluster of "
        f"{res['cpus']} CPUs and {res['cpus']} workers started before timing, in `apply` "
        f"({on_ray['setup_s']:.1f} s with the cluster start). One run of each, in the "
        "order of the table.",
        "",
        "| engine (`features.engine`), online store (`features.sqlite_writer`) | seconds | "
        "feature rows/s (2 views) | online rows written | vs baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, engine, writer, what in RUNS:
        r = runs[name]
        written = sum(v["entities"] for v in r["views"].values())
        lines.append(
            f"| {what}: `{engine}`, `{writer}` | {r['seconds']:.2f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {written:,} | {base / r['seconds']:.2f}x |"
        )
    same = res["same"]
    lines += [
        "",
        f"Target (at least {TARGET:.0f}x Feast's local engine with its SQLite store, judged "
        f"on the Ray engine with the batched store): {met} ({ratio:.2f}x). On the batched "
        f"store, the Ray engine is {local['seconds'] / on_ray['seconds']:.2f}x the local "
        f"engine. The batched store alone (local engine) is {base / local['seconds']:.2f}x "
        "the baseline.",
        "",
        "All runs count the same rows and entities per view (`MaterializeResult`). "
        f"Against the baseline's online store ({same['local']['rows']:,} SQLite rows), "
        "compared row by row in SQLite (every column's value and type): "
        + "; ".join(
            f"{what.split(',')[0]} with the batched store "
            + (
                "identical"
                if not same[name]["columns_differing"]
                else "differing in " + ", ".join(same[name]["columns_differing"])
            )
            for name, _, _, what in RUNS[1:]
        )
        + f". Through the online reader, every feature of all {res['compared']:,} devices "
        "equal.",
        "",
        "Where the time goes (wall seconds, timed around the functions that do each "
        "step in the driver; on the Ray engine the conversion and the writes run inside "
        "the write node's task):",
        "",
        "| run | step | seconds |",
        "|---|---|---:|",
    ]
    for name, *_ in RUNS:
        for step, sec in runs[name]["steps"].items():
            lines.append(f"| {name} | {step} | {sec:.2f} |")
    if res.get("feast_alone_s") is not None:
        lines += [
            "",
            f"Feast's Ray engine reading the source itself (`pull_latest_features: true`, "
            f"one view, `device_hourly`): {res['feast_alone_s']:.1f} s, against "
            f"{on_ray['seconds'] / 2:.1f} s per view above.",
        ]
    lines += ["", why(res)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="feature rows (24 per device)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="Ray cluster CPUs")
    parser.add_argument(
        "--feast-alone", action="store_true", help="also time Feast's Ray engine alone"
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs untouched")
    args = parser.parse_args()
    if args.rows < HOURS:
        parser.error(f"--rows must be at least {HOURS}")
    load_start = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="mlk-bench-materialize-"))
    try:
        source = str(root / "source")
        devices = lake(source, args.rows)
        rows = devices * HOURS
        done: dict[str, dict[str, Any]] = {}
        for name, engine, writer, _ in RUNS:
            done[name] = run_engine(root, source, name, engine, writer, args.cpus)
            print(name, {k: v for k, v in done[name].items() if k != "client"}, file=sys.stderr)
        baseline = done["baseline"]
        same: dict[str, Any] = {}
        for name, *_ in RUNS[1:]:
            assert done[name]["views"] == baseline["views"], (name, done[name]["views"])
            compared = same_online(baseline["client"], done[name]["client"], devices)
            same[name] = same_tables(baseline["client"], done[name]["client"])
        alone = feast_alone(root, source, args.cpus) if args.feast_alone else None
        runs = {n: {k: v for k, v in r.items() if k != "client"} for n, r in done.items()}
        res: dict[str, Any] = {
            "rows": rows,
            "devices": devices,
            "cpus": args.cpus,
            "views": sorted(baseline["views"]),
            "table_rows": same["local"]["rows"],
            "compared": compared,
            "same": same,
            "runs": runs,
            "baseline": "baseline",
            "vs_baseline": {
                n: round(runs["baseline"]["seconds"] / r["seconds"], 3) for n, r in runs.items()
            },
            "ratio": round(runs["baseline"]["seconds"] / runs["ray"]["seconds"], 3),
            "ray_vs_local": round(runs["local"]["seconds"] / runs["ray"]["seconds"], 3),
            "target": TARGET,
            "feast_alone_s": round(alone, 3) if alone is not None else None,
            "load_average": [[round(x, 2) for x in la] for la in (load_start, os.getloadavg())],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    section = f"{START}\n{render(res, sys.argv)}\n{END}"
    print(section)
    if not args.no_doc:
        write_section(DOC, START, END, section)
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
