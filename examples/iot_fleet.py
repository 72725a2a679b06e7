"""The IoT readings example: a fleet of devices with a wear process, and its raw records.

This is example data for the bundled ``iot_readings`` spec (examples/datasets/), used by
the test suite, the benchmarks and ``etl_quickstart.py``; the library's own generator,
:mod:`mlops_kit.data.generate`, writes data for any spec.

Deterministic synthetic IoT readings for predictive maintenance.

Each device carries a hidden wear process: in the 48 hours before a failure its
temperature and vibration rise and its voltage sags. A reading is labelled ``failure=1``
when the device fails within the next 24 hours, so a model over windowed aggregates can
learn the signal (ROC-AUC well above 0.8).

Bad records can be injected at a chosen rate, one kind per bad record, so that tests
and demos exercise every quality rule; the generator returns how many of each kind it
injected, which is the ground truth the quarantine must match.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from mlops_kit.data.spec import load_spec

SENSORS: tuple[str, ...] = ("temperature", "vibration", "pressure", "humidity", "rpm", "voltage")
"""Sensor columns of the IoT readings, in the spec's order."""

READING_SCHEMA = load_spec("iot_readings").arrow_schema()
"""Typed, normalised readings (temperature in degrees Celsius), from the spec."""

BAD_KINDS = (
    "null",
    "out_of_range",
    "wrong_type",
    "malformed_json",
    "duplicate_key",
    "future_timestamp",
    "unknown_entity",
)
"""Kinds of bad record the generator can inject (raw JSON form)."""

_BASE = {  # mean and spread of each device's healthy baseline
    "temperature": (60.0, 5.0),
    "vibration": (3.0, 0.4),
    "pressure": (101.3, 2.0),
    "humidity": (45.0, 8.0),
    "rpm": (1500.0, 120.0),
    "voltage": (230.0, 3.0),
}
_NOISE = {
    "temperature": 2.0,
    "vibration": 0.35,
    "pressure": 0.8,
    "humidity": 3.0,
    "rpm": 40.0,
    "voltage": 1.5,
}


def device_ids(n_devices: int) -> list[str]:
    """The ids of the fleet: ``dev-0000`` .. ``dev-{n-1}``."""
    return [f"dev-{i:04d}" for i in range(n_devices)]


def device_registry(n_devices: int, seed: int = 0) -> pa.Table:
    """The known devices (the referential rule's reference table)."""
    rng = np.random.default_rng(seed + 1)
    ids = device_ids(n_devices)
    sites = np.array(["plant-a", "plant-b", "plant-c"])[rng.integers(0, 3, n_devices)]
    models = np.array(["pump-x1", "pump-x2", "compressor-c9"])[rng.integers(0, 3, n_devices)]
    return pa.table({"device_id": ids, "site": sites.tolist(), "model": models.tolist()})


@dataclass
class GeneratorConfig:
    """What to generate.

    Attributes:
        n_devices: fleet size.
        start: first reading time (UTC).
        freq_s: seconds between two readings of a device.
        steps: readings per device.
        failures_per_device_per_day: rate of failure events.
        seed: every output is a pure function of the config.
    """

    n_devices: int = 20
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    freq_s: int = 300
    steps: int = 288 * 3
    failures_per_device_per_day: float = 0.25
    seed: int = 7


def _device_block(cfg: GeneratorConfig, dev_lo: int, dev_hi: int) -> pa.Table:
    n_dev = dev_hi - dev_lo
    rng = np.random.default_rng([cfg.seed, dev_lo])
    steps = cfg.steps
    t = np.arange(steps, dtype=np.int64) * cfg.freq_s  # seconds from start
    horizon_s = steps * cfg.freq_s
    # failure times per device (Poisson), padded into an (n_dev, k) matrix
    lam = cfg.failures_per_device_per_day * horizon_s / 86400.0
    k = max(1, int(lam * 3) + 2)
    counts = np.minimum(rng.poisson(lam, n_dev), k)
    fail_times = rng.uniform(0, horizon_s + 86400, (n_dev, k))
    fail_times[np.arange(k)[None, :] >= counts[:, None]] = np.inf
    fail_times.sort(axis=1)
    # time to the next failure for every (device, step)
    idx = np.stack([np.searchsorted(fail_times[d], t, side="left") for d in range(n_dev)])
    padded = np.concatenate([fail_times, np.full((n_dev, 1), np.inf)], axis=1)
    next_fail = np.take_along_axis(padded, idx, axis=1)
    ttf = next_fail - t[None, :]
    wear = np.clip(1.0 - ttf / (48 * 3600.0), 0.0, 1.0)  # ramps over the 48 h before failure
    label = (ttf <= 24 * 3600.0).astype(np.int8)

    cols: dict[str, np.ndarray] = {}
    for name in SENSORS:
        mean, spread = _BASE[name]
        base = rng.normal(mean, spread, (n_dev, 1))
        noise = rng.normal(0.0, _NOISE[name], (n_dev, steps))
        cols[name] = base + noise
    cols["temperature"] += 14.0 * wear
    cols["vibration"] += 3.5 * wear**2
    cols["voltage"] -= 6.0 * wear
    cols["rpm"] -= 120.0 * wear

    ids = np.array(device_ids(cfg.n_devices)[dev_lo:dev_hi], dtype=object)
    start_us = int(cfg.start.timestamp() * 1_000_000)
    ts = start_us + np.tile(t * 1_000_000, n_dev)
    # interleave devices in time order, as a stream would deliver them
    order = np.lexsort((np.repeat(np.arange(n_dev), steps), ts))
    arrays = {
        "device_id": pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(n_dev, dtype=np.int32), steps)[order]),
            pa.array(ids.tolist(), pa.string()),
        ).cast(pa.string()),
        "ts": pa.array(ts[order], pa.timestamp("us", tz="UTC")),
    }
    for name in SENSORS:
        arrays[name] = pa.array(np.round(cols[name].ravel()[order], 3))
    arrays["failure"] = pa.array(label.ravel()[order])
    return pa.table(arrays, schema=READING_SCHEMA)


def generate_readings(cfg: GeneratorConfig | None = None) -> pa.Table:
    """All clean readings of the fleet, ordered by time."""
    cfg = cfg or GeneratorConfig()
    table = _device_block(cfg, 0, cfg.n_devices)
    return table


def iter_reading_batches(cfg: GeneratorConfig, devices_per_batch: int) -> Iterator[pa.Table]:
    """Clean readings in batches of whole devices (bounded memory for large volumes)."""
    for lo in range(0, cfg.n_devices, devices_per_batch):
        yield _device_block(cfg, lo, min(cfg.n_devices, lo + devices_per_batch))


@dataclass
class RawBatch:
    """Raw JSON lines plus the ground truth of what was injected."""

    lines: list[str]
    clean_rows: int
    injected: Counter[str]

    def to_bytes(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _record(row: dict) -> dict:
    rec = dict(row)
    rec["ts"] = rec["ts"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return rec


def to_raw_records(
    table: pa.Table,
    bad_rate: float = 0.0,
    kinds: tuple[str, ...] = BAD_KINDS,
    seed: int = 11,
    fahrenheit_share: float = 0.0,
) -> RawBatch:
    """Serialise readings to JSON lines, corrupting ``bad_rate`` of them.

    Each corrupted line is one of ``kinds``; ``duplicate_key`` adds a conflicting copy of
    a record (same device and time, other values), so it adds a line instead of replacing
    one. ``fahrenheit_share`` of the good records report temperature in Fahrenheit with
    ``temperature_unit: "F"`` (the transform normalises them).
    """
    unknown = set(kinds) - set(BAD_KINDS)
    if unknown:
        raise ValueError(f"unknown bad-record kinds {sorted(unknown)}: use {BAD_KINDS}")
    rng = np.random.default_rng(seed)
    rows = table.to_pylist()
    n = len(rows)
    bad = rng.random(n) < bad_rate
    which = rng.integers(0, len(kinds), n)
    fahr = rng.random(n) < fahrenheit_share
    future = datetime.now(timezone.utc) + timedelta(days=30)
    lines: list[str] = []
    injected: Counter[str] = Counter()
    clean = 0
    for i, row in enumerate(rows):
        rec = _record(row)
        if not bad[i]:
            if fahr[i]:
                rec["temperature"] = round(rec["temperature"] * 9 / 5 + 32, 3)
                rec["temperature_unit"] = "F"
            lines.append(json.dumps(rec))
            clean += 1
            continue
        kind = kinds[which[i]]
        injected[kind] += 1
        field_ = SENSORS[int(rng.integers(0, len(SENSORS)))]
        if kind == "null":
            rec[field_] = None
        elif kind == "out_of_range":
            rec[field_] = -9999.0
        elif kind == "wrong_type":
            rec[field_] = "n/a"
        elif kind == "malformed_json":
            lines.append(json.dumps(rec)[:-7])
            continue
        elif kind == "duplicate_key":
            lines.append(json.dumps(rec))
            clean += 1
            rec[field_] = rec[field_] + 1.0
        elif kind == "future_timestamp":
            rec["ts"] = future.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif kind == "unknown_entity":
            rec["device_id"] = f"dev-9{i:06d}"
        lines.append(json.dumps(rec))
    return RawBatch(lines=lines, clean_rows=clean, injected=injected)


def inject_typed_bad(table: pa.Table, rate: float, seed: int = 13) -> tuple[pa.Table, Counter[str]]:
    """Corrupt ``rate`` of typed rows in place (vectorised, for large volumes).

    Kinds: ``null`` and ``out_of_range`` sensors, ``unknown_entity``, ``future_timestamp``
    (the kinds that survive typing; malformed JSON and wrong types only exist in raw
    form, see :func:`to_raw_records`).
    """
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    n = table.num_rows
    bad = rng.random(n) < rate
    kind = rng.integers(0, 4, n)
    counts: Counter[str] = Counter()
    cols = {name: table[name] for name in table.column_names}
    temp = cols["temperature"].to_numpy().copy()
    vib = cols["vibration"].to_numpy().copy()
    null_mask = bad & (kind == 0)
    temp[bad & (kind == 1)] = -9999.0
    vib_null = pa.array(vib, mask=null_mask)
    cols["temperature"] = pa.array(temp)
    cols["vibration"] = vib_null
    dev_mask = pa.array(bad & (kind == 2))
    cols["device_id"] = pc.if_else(dev_mask, "dev-unknown", cols["device_id"])
    future = datetime.now(timezone.utc) + timedelta(days=30)
    ts_mask = pa.array(bad & (kind == 3))
    cols["ts"] = pc.if_else(ts_mask, pa.scalar(future, table["ts"].type), cols["ts"])
    counts["null"] = int(null_mask.sum())
    counts["out_of_range"] = int((bad & (kind == 1)).sum())
    counts["unknown_entity"] = int((bad & (kind == 2)).sum())
    counts["future_timestamp"] = int((bad & (kind == 3)).sum())
    return pa.table(cols, schema=table.schema), counts
