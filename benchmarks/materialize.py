"""Materialization benchmark: Feast's local engine vs Feast's Ray engine, same rows.

A day of hourly feature rows (``--rows`` in all, ``--rows / 24`` devices; one Parquet file
per hour, so every device has a row in every file), generated before timing, in the
processed schema of the default spec. In one run, each engine materializes both feature
views of that day into a fresh SQLite online store through
:meth:`mlops_kit.features.FeatureClient.materialize` (``features.engine: local``, then
``features.engine: ray`` on a local Ray cluster of ``--cpus`` CPUs, started before
timing); then the two online stores are compared device by device (every feature of
every device must be equal).

For the Ray engine the time is split into its steps (see
:mod:`mlops_kit.features.ray_engine`): the newest row per entity on Ray tasks, Feast's
Ray engine writing them, the read-back of the online rows. ``--feast-alone`` also times
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
TARGET = 3.0  # the target: the Ray engine at least 3x Feast's local engine


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


class Steps:
    """Wall time of the Ray engine's steps, timed around the functions that do them."""

    def __init__(self) -> None:
        self.seconds = {"newest rows on Ray tasks": 0.0, "read-back": 0.0}
        self._stage, self._check = ray_engine.stage_newest, ray_engine.check_written

        def stage(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return self._stage(*a, **k)
            finally:
                self.seconds["newest rows on Ray tasks"] += time.perf_counter() - t

        def check(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return self._check(*a, **k)
            finally:
                self.seconds["read-back"] += time.perf_counter() - t

        ray_engine.stage_newest, ray_engine.check_written = stage, check  # type: ignore[assignment]

    def close(self) -> None:
        ray_engine.stage_newest, ray_engine.check_written = self._stage, self._check  # type: ignore[assignment]


def run_engine(root: Path, source: str, engine: str, cpus: int) -> dict[str, Any]:
    settings = load_settings(
        home=root / engine,
        features={"source_uri": source, "engine": engine},
        ray={"num_cpus": cpus, "workers": cpus},
    )
    client = FeatureClient(settings)
    t = time.perf_counter()
    client.apply()  # joins (starts) the Ray cluster for the ray engine
    setup = time.perf_counter() - t
    steps = Steps() if engine == "ray" else None
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = client.materialize(T0 + timedelta(days=1, hours=1))
    finally:
        if steps:
            steps.close()
    seconds = time.perf_counter() - t
    out: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "setup_s": round(setup, 3),
        "rows": result.rows,
        "views": {
            k: {"rows": v["rows"], "entities": v["entities"]} for k, v in result.views.items()
        },
        "client": client,
    }
    if steps:
        out["steps"] = {k: round(v, 3) for k, v in steps.seconds.items()}
        out["steps"]["Feast's Ray engine (read staged rows, write online)"] = round(
            seconds - sum(steps.seconds.values()), 3
        )
    return out


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

    local, on_ray = res["local"], res["ray"]
    rows, devices = res["rows"], res["devices"]
    ratio = local["seconds"] / on_ray["seconds"]
    met = "met" if ratio >= TARGET else "**not met**"
    load0, load1 = res["load_average"]
    lines = [
        "## Materialization: Feast's local engine vs Feast's Ray engine",
        "",
        f"Command: `python {' '.join(['benchmarks/materialize.py', *argv[1:]])}`.",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, load average (1, 5, 15 min) {load0} "
        f"at the start and {load1} at the end; Python {platform.python_version()}, feast "
        f"{feast.__version__}, ray {ray.__version__}. A day of hourly feature rows: "
        f"{rows:,} rows of {devices:,} devices in 24 Parquet files (one per hour, every "
        "device in each), the default spec's processed schema; both feature views "
        "(`device_hourly`, `device_daily`, 19 features each) into a fresh SQLite online "
        f"store. The Ray engine runs on a local Ray cluster of {res['cpus']} CPUs started "
        f"before timing, in `apply` ({on_ray['setup_s']:.1f} s with the cluster start; "
        f"{local['setup_s']:.1f} s for the local engine's, the first, which imports Feast). "
        "One run of each, local first.",
        "",
        "| engine (`features.engine`) | seconds | feature rows/s (2 views) | "
        "online rows written | vs local |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in (
        ("`local`: Feast's local engine", local),
        ("`ray`: Feast's Ray engine", on_ray),
    ):
        written = sum(v["entities"] for v in r["views"].values())
        lines.append(
            f"| {name} | {r['seconds']:.2f} | {r['rows'] / r['seconds']:,.0f} | {written:,} | "
            f"{local['seconds'] / r['seconds']:.2f}x |"
        )
    lines += [
        "",
        f"Target (the Ray engine at least {TARGET:.0f}x the local engine on this machine): "
        f"{met} ({ratio:.2f}x). Both runs count the same rows and entities per view "
        f"(`MaterializeResult`), and the two online stores hold the same values for all "
        f"{res['compared']:,} devices (compared feature by feature after the runs).",
        "",
        "Where the Ray engine's time goes:",
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    for step, s in on_ray["steps"].items():
        lines.append(f"| {step} | {s:.2f} |")
    if res.get("feast_alone_s") is not None:
        lines += [
            "",
            f"Feast's Ray engine reading the source itself (`pull_latest_features: true`, "
            f"one view, `device_hourly`): {res['feast_alone_s']:.1f} s, against "
            f"{on_ray['seconds'] / 2:.1f} s per view above.",
        ]
    lines += [
        "",
        "Why the target is out of reach here: both engines write through Feast's SQLite "
        "online store, one upsert per feature value from one writer at a time (SQLite "
        "locks the file; the Ray engine is given `write_concurrency: 1`), and Feast "
        "converts every row to its protos in Python before; a cProfile of the local "
        "engine on one view (by hand, not by this script) put the upserts at about half "
        "of its time and the conversion at a fifth. That part cannot spread over 2 cores, "
        "and the Ray engine adds its own costs around it: Ray Data moving each batch "
        "through pandas, a sort of the staged rows, the start of its tasks, the read-back. "
        "Where the Ray engine could pay off is a cluster, not measured here: the "
        "newest-row step spreads over its CPUs, and on DynamoDB its writers "
        "(`write_concurrency: ray.workers`) write in parallel.",
    ]
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
        local = run_engine(root, source, "local", args.cpus)
        print("local", {k: v for k, v in local.items() if k != "client"}, file=sys.stderr)
        on_ray = run_engine(root, source, "ray", args.cpus)
        print("ray", {k: v for k, v in on_ray.items() if k != "client"}, file=sys.stderr)
        assert local["views"] == on_ray["views"], (local["views"], on_ray["views"])
        compared = same_online(local["client"], on_ray["client"], devices)
        alone = feast_alone(root, source, args.cpus) if args.feast_alone else None
        res: dict[str, Any] = {
            "rows": rows,
            "devices": devices,
            "cpus": args.cpus,
            "compared": compared,
            "local": {k: v for k, v in local.items() if k != "client"},
            "ray": {k: v for k, v in on_ray.items() if k != "client"},
            "ratio": round(local["seconds"] / on_ray["seconds"], 3),
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
