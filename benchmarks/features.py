"""Feature store benchmark: online latency, materialization throughput, DynamoDB projection.

Side by side in one run, on the embedded default (SQLite) unless noted:

* online retrieval p50/p99 over ``--calls`` calls for 1, 10 and 100 entities: Feast's
  ``FeatureStore.get_online_features`` alone, mlops_kit's API on the Feast path
  (``fast=False``), mlops_kit's direct reader (``fast=True``, the default), and the raw
  SQLite query of the same rows (the floor);
* materialization rows/s for ``--entities`` entities: mlops_kit's incremental
  ``materialize`` next to Feast's own ``FeatureStore.materialize`` on a fresh online store;
* DynamoDB on moto's server: reading 6 of a view's 19 features with and without a
  ``ProjectionExpression`` (bytes on the wire and latency).

Writes its section of ``docs/benchmarks.md`` (between the ``features`` markers).

Usage::

    python benchmarks/features.py [--calls 300] [--entities 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mlops_kit import storage
from mlops_kit.config import load_settings
from mlops_kit.etl.layout import layout_for
from mlops_kit.features.store import FeatureClient

FEATURES_SCHEMA = layout_for().features_schema

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- features:start -->", "<!-- features:end -->"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SIX = [
    f"device_hourly:{s}_mean_1h"
    for s in ("temperature", "vibration", "pressure", "humidity", "rpm", "voltage")
]


def lake(source: str, n: int, seed: int = 0) -> None:
    """One hourly row per device for ``n`` devices, in one day partition."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {
        "device_id": [f"dev-{i:06d}" for i in range(n)],
        "event_timestamp": pa.array([T0 + timedelta(hours=1)] * n, pa.timestamp("us", tz="UTC")),
    }
    for field in FEATURES_SCHEMA:
        if field.name in cols:
            continue
        if field.name == "created_at":
            cols[field.name] = pa.array([T0 + timedelta(hours=2)] * n, field.type)
        elif pa.types.is_integer(field.type):
            cols[field.name] = rng.integers(1, 300, n)
        else:
            cols[field.name] = rng.normal(50, 10, n)
    table = pa.table(cols).cast(FEATURES_SCHEMA)
    storage.write_parquet(storage.join(source, "date=2026-01-01", "part-bench.parquet"), table)


def timings(fns: dict[str, Callable[[], Any]], calls: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 (ms) of each function, calls interleaved so noise hits all alike."""
    for fn in fns.values():
        for _ in range(min(20, calls)):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(calls):
        for key, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t)
    out = {}
    for key, values in samples.items():
        values.sort()
        p99 = values[min(len(values) - 1, round(0.99 * len(values)) - 1)]
        out[key] = (statistics.median(values) * 1e3, p99 * 1e3)
    return out


def online_bench(root: Path, calls: int) -> list[tuple[int, dict[str, tuple[float, float]]]]:
    settings = load_settings(home=root / "online")
    client = FeatureClient(settings)
    lake(client.placement.source_uri, 1000)
    client.apply()
    client.materialize(T0 + timedelta(days=1))
    store = client.store
    conn = sqlite3.connect(client.placement.online_path or "")
    from mlops_kit.features.online import _Keys

    keys = _Keys(3)
    names = [r.split(":")[1] for r in SIX]
    results = []
    for n in (1, 10, 100):
        ids = [f"dev-{i * 7 % 1000:06d}" for i in range(n)]
        rows = [{"device_id": d} for d in ids]
        blobs = [keys.serialized(d) for d in ids]
        sql = (
            'SELECT entity_key, feature_name, value, event_ts FROM "mlops_kit_device_hourly" '
            f"WHERE entity_key IN ({','.join('?' * n)}) "
            f"AND feature_name IN ({','.join('?' * len(names))})"
        )
        assert len(conn.execute(sql, [*blobs, *names]).fetchall()) == n * len(names)
        feast_vals = store.get_online_features(features=SIX, entity_rows=rows).to_dict()
        fast_vals = client.online(ids, SIX, fast=True).columns
        assert all(feast_vals[k] == fast_vals[k] for k in names)
        res = timings(
            {
                "feast": lambda rows=rows: store.get_online_features(
                    features=SIX, entity_rows=rows
                ).to_dict(),
                "ours_feast": lambda ids=ids: client.online(ids, SIX, fast=False),
                "ours_fast": lambda ids=ids: client.online(ids, SIX, fast=True),
                "raw": lambda sql=sql, blobs=blobs: conn.execute(sql, [*blobs, *names]).fetchall(),
            },
            calls,
        )
        results.append((n, res))
    conn.close()
    client.close()
    return results


def materialize_bench(root: Path, entities: int) -> dict[str, float]:
    source = str(root / "mat-source")
    lake(source, entities, seed=1)
    out: dict[str, float] = {}
    for label in ("feast", "ours"):
        settings = load_settings(home=root / f"mat-{label}", features={"source_uri": source})
        client = FeatureClient(settings)
        client.apply()
        end = T0 + timedelta(days=1)
        t = time.perf_counter()
        if label == "ours":
            res = client.materialize(end, views=["device_hourly"])
            assert res.views["device_hourly"]["entities"] == entities
        else:
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                client.store.materialize(
                    start_date=T0, end_date=end, feature_views=["device_hourly"]
                )
        out[label] = time.perf_counter() - t
        check = client.online([f"dev-{entities - 1:06d}"], SIX[:1], fast=True)
        assert check.missing == []
        client.close()
    return out


def dynamo_bench(root: Path, calls: int) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        settings = load_settings(
            home=root / "dynamo",
            aws={"endpoint_url": endpoint},
            features={"online_store": "dynamodb", "dynamodb_table": "bench"},
        )
        client = FeatureClient(settings)
        lake(client.placement.source_uri, 100, seed=2)
        client.apply()
        client.materialize(T0 + timedelta(days=1))
        from mlops_kit.features.online import DynamoReader

        reader = client._online_reader()
        assert isinstance(reader, DynamoReader)
        ids = [f"dev-{i:06d}" for i in range(100)]
        names = [r.split(":")[1] for r in SIX]
        sizes: dict[str, int] = {}

        def record(label: str) -> Callable[..., None]:
            def hook(http_response: Any, **_: Any) -> None:
                sizes[label] = len(http_response.content)

            return hook

        for label, project in (("projected", True), ("full", False)):
            reader.project_features = project
            hook = record(label)
            reader.client.meta.events.register("after-call.dynamodb.BatchGetItem", hook)
            reader.read("device_hourly", ids, names)
            reader.client.meta.events.unregister("after-call.dynamodb.BatchGetItem", hook)
        full_reader = DynamoReader(
            client.store.config.online_store.table_name_template,
            client.placement.project,
            settings.aws.region,
            endpoint,
        )
        full_reader.project_features = False
        reader.project_features = True
        entity_rows = [{"device_id": d} for d in ids]
        out: dict[str, Any] = timings(
            {
                "projected": lambda: reader.read("device_hourly", ids, names),
                "full": lambda: full_reader.read("device_hourly", ids, names),
                "feast": lambda: client.store.get_online_features(
                    features=SIX, entity_rows=entity_rows
                ).to_dict(),
            },
            calls,
        )
        out["bytes"] = sizes
        client.close()
        return out
    finally:
        server.stop()


def render(args: argparse.Namespace, online: list, mat: dict[str, float], dyn: dict) -> str:
    import feast

    lines = [
        "## Features: online retrieval, materialization, DynamoDB projection",
        "",
        f"Command: `python benchmarks/features.py --calls {args.calls} --entities {args.entities}`.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}, feast {feast.__version__}. Six features "
        "(`device_hourly:<sensor>_mean_1h`) of 1,000 materialized devices on the SQLite "
        f"online store; {args.calls} timed calls per cell after 20 warm-up calls.",
        "",
        "### Online retrieval latency (ms)",
        "",
        "| entities | Feast `get_online_features` p50 / p99 | mlops_kit, Feast path p50 / p99 "
        "(added p50 / p99) | **mlops_kit direct reader** (default) p50 / p99 | "
        "raw SQLite query p50 / p99 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n, r in online:
        f, of, fast, raw = r["feast"], r["ours_feast"], r["ours_fast"], r["raw"]
        lines.append(
            f"| {n} | {f[0]:.3f} / {f[1]:.3f} | {of[0]:.3f} / {of[1]:.3f} "
            f"({of[0] - f[0]:+.3f} / {of[1] - f[1]:+.3f}) | **{fast[0]:.3f} / {fast[1]:.3f}** "
            f"({f[0] / fast[0]:.1f}x / {f[1] / fast[1]:.1f}x faster than Feast) | "
            f"{raw[0]:.3f} / {raw[1]:.3f} |"
        )
    rows = args.entities
    lines += [
        "",
        "The Feast path of our API wraps the same call (feature-name resolution, the "
        "unknown-entity count); the direct reader keeps serialized keys and one connection, "
        "reads only the requested features and parses the values itself: same values as "
        "Feast (checked before timing). The raw query returns undecoded rows and is the floor. "
        "The calls of the four paths are interleaved; the machine is shared, so p99 carries "
        "the neighbours' noise (compare p50 for the added cost).",
        "",
        f"### Materialization: {rows:,} entities x 19 features (`device_hourly`)",
        "",
        "| path | seconds | rows/s | feature values/s |",
        "|---|---:|---:|---:|",
        f"| Feast `FeatureStore.materialize` | {mat['feast']:.2f} | {rows / mat['feast']:,.0f} | "
        f"{rows * 19 / mat['feast']:,.0f} |",
        f"| **mlops_kit** `materialize` (incremental, schema check, high-water mark) | "
        f"{mat['ours']:.2f} | {rows / mat['ours']:,.0f} | {rows * 19 / mat['ours']:,.0f} |",
        "",
        "Our materialization writes through Feast (the online rows stay Feast's); it adds the "
        "schema check, the key scan for the row accounting and the state file, so the two "
        "rows differ by run-to-run noise (Feast runs first, on a cold cache). A view "
        "materializes all of its features, so the six-feature case costs the same per row as "
        "the view it belongs to (19 features).",
        "",
        "### DynamoDB (moto server over HTTP): 100 entities, 6 of 19 features",
        "",
        "| read | p50 / p99 ms | BatchGetItem response bytes |",
        "|---|---:|---:|",
        f"| direct reader with `ProjectionExpression` (requested features only) | "
        f"{dyn['projected'][0]:.2f} / {dyn['projected'][1]:.2f} | {dyn['bytes']['projected']:,} |",
        f"| direct reader, whole items | {dyn['full'][0]:.2f} / {dyn['full'][1]:.2f} | "
        f"{dyn['bytes']['full']:,} |",
        f"| Feast `get_online_features` | {dyn['feast'][0]:.2f} / {dyn['feast'][1]:.2f} | - |",
        "",
        "Feast 0.67's DynamoDB store already passes the requested features as a projection "
        "(`_build_projection_expression`), so the gap the open Feast issue describes is closed "
        "in this version; the table shows what the projection saves. moto's latency is not "
        "DynamoDB's: read the bytes column for the effect on the wire.",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n"
    block = f"{START}\n{text}\n{END}"
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        doc = before + block + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mlk-bench-features-"))
    try:
        online = online_bench(root, args.calls)
        print("online", online, file=sys.stderr)
        mat = materialize_bench(root, args.entities)
        print("materialize", mat, file=sys.stderr)
        dyn = dynamo_bench(root, 50)
        print("dynamodb", dyn, file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = render(args, online, mat, dyn)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
