"""The demo's data: generated for the dataset spec, split three ways, with what to expect.

A third of the records arrives as files (a JSON-lines dump and a CSV export, both with
bad records, and a legacy export in Latin-1 that the ETL quarantines whole), a third
through a paginated HTTP API, a third on the stream. The generator records what it
injected, so the demo can show the ETL's accounting next to it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

from mlops_kit.data.generate import RawBatch, SpecGeneratorConfig, generate, known_ids, to_raw
from mlops_kit.data.spec import DatasetSpec


@dataclass
class DemoData:
    """What the demo sends, by way in, and the quarantine the ETL should report."""

    records: int
    entities: int
    days: int
    files: list[Path]
    file_records: int
    api_lines: list[str]
    stream_lines: list[str]
    known: pa.Table | None
    expected: Counter[str] = field(default_factory=Counter)
    """Quarantined records by reason, as the generator injected them."""


def _start(days: int) -> datetime:
    """Midnight ``days`` days ago (UTC): the data ends about now, within every spec's
    freshness window."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def make(
    spec: DatasetSpec,
    inbox: Path,
    *,
    entities: int = 20,
    days: int = 3,
    bad_rate: float = 0.04,
    freq_s: int = 300,
    seed: int = 7,
) -> DemoData:
    """Generate the demo's records for ``spec`` and write the file-borne third to ``inbox``."""
    config = SpecGeneratorConfig(
        n_entities=entities,
        start=_start(days),
        freq_s=freq_s,
        steps=days * 86400 // freq_s,
        seed=seed,
        positive_rate=0.12,
    )
    table = generate(spec, config)
    n = table.num_rows
    third = n // 3
    parts = [table.slice(0, third), table.slice(third, third), table.slice(2 * third)]
    expected: Counter[str] = Counter()

    def raw(part: pa.Table, k: int) -> RawBatch:
        return to_raw(spec, part, bad_rate=bad_rate, unit_rate=0.2, seed=seed + k)

    inbox.mkdir(parents=True, exist_ok=True)
    half = parts[0].num_rows // 2
    dump, export = raw(parts[0].slice(0, half), 1), raw(parts[0].slice(half), 2)
    (inbox / "gateway_dump.jsonl").write_bytes(dump.to_bytes())
    (inbox / "partner_export.csv").write_bytes(export.to_csv_bytes())
    expected.update(dump.expected_quarantine("jsonl"))
    expected.update(export.expected_quarantine("csv"))
    # a legacy export in Latin-1: quarantined whole, the other objects go on
    fields = [spec.entity.join_key, spec.event_time.column, *spec.columns]
    legacy = ",".join([*fields, "site"]) + "\n" + ",".join(["x"] * len(fields) + ["Köln"]) + "\n"
    (inbox / "legacy_export.csv").write_bytes(legacy.encode("latin-1"))
    api, stream = raw(parts[1], 3), raw(parts[2], 4)
    expected.update(api.expected_quarantine("jsonl"))
    expected.update(stream.expected_quarantine("jsonl"))
    registry = spec.entity.known_ids.source == "registry"
    return DemoData(
        records=n,
        entities=entities,
        days=days,
        files=[
            inbox / "gateway_dump.jsonl",
            inbox / "partner_export.csv",
            inbox / "legacy_export.csv",
        ],
        file_records=len(dump.records) + len(export.records),
        api_lines=api.lines,
        stream_lines=stream.lines,
        known=known_ids(spec, entities) if registry else None,
        expected=Counter({k: v for k, v in expected.items() if v}),
    )
