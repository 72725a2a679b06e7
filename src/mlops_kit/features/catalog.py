"""The feature catalogue, in plain Python (no Feast import).

Names of the entity, the feature views, their features and types, and the versioned
feature services. :mod:`mlops_kit.features.definitions` turns this into Feast objects;
the CLI and input validation use it directly, so they stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_kit.data.schema import SENSORS, STATS

ENTITY = "device"
JOIN_KEY = "device_id"
TIMESTAMP = "event_timestamp"
SOURCE_TABLE = "device_features_hourly"


@dataclass(frozen=True)
class ViewSpec:
    """One feature view: its name, its features (name -> Feast type name) and its TTL."""

    name: str
    features: dict[str, str]
    ttl_setting: str
    description: str


def _window(w: str) -> dict[str, str]:
    out = {f"readings_{w}": "Int64"}
    out.update({f"{s}_{stat}_{w}": "Float64" for s in SENSORS for stat in STATS})
    out.update({f"{s}_count_{w}": "Int64" for s in SENSORS})
    return out


HOURLY = ViewSpec(
    "device_hourly",
    _window("1h"),
    "hourly_ttl_s",
    "Per-device aggregates over the hour ending at event_timestamp.",
)
DAILY = ViewSpec(
    "device_daily",
    _window("24h"),
    "daily_ttl_s",
    "Per-device aggregates over the 24 hours ending at event_timestamp.",
)
VIEWS: dict[str, ViewSpec] = {v.name: v for v in (HOURLY, DAILY)}

DERIVED_VIEW = "device_derived"
DERIVED: dict[str, str] = {
    "temperature_delta_1h_24h": "Float64",
    "vibration_delta_1h_24h": "Float64",
    "temperature_zscore_1h": "Float64",
    "voltage_range_24h": "Float64",
}
"""On-demand features computed from the two views at request time."""

DERIVED_INPUTS: dict[str, tuple[str, str]] = {
    "temperature_mean_1h": (HOURLY.name, "Float64"),
    "vibration_mean_1h": (HOURLY.name, "Float64"),
    "temperature_mean_24h": (DAILY.name, "Float64"),
    "temperature_std_24h": (DAILY.name, "Float64"),
    "vibration_mean_24h": (DAILY.name, "Float64"),
    "voltage_max_24h": (DAILY.name, "Float64"),
    "voltage_mean_24h": (DAILY.name, "Float64"),
}


def derive(inputs: dict[str, list[float | None]]) -> dict[str, list[float | None]]:
    """The on-demand features, row by row (None in, None out).

    Args:
        inputs: columns named as in :data:`DERIVED_INPUTS`.
    """

    def sub(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    t1, t24, s24 = (
        inputs["temperature_mean_1h"],
        inputs["temperature_mean_24h"],
        inputs["temperature_std_24h"],
    )
    zscore = [
        None if a is None or b is None or not s else (a - b) / s
        for a, b, s in zip(t1, t24, s24, strict=True)
    ]
    return {
        "temperature_delta_1h_24h": [sub(a, b) for a, b in zip(t1, t24, strict=True)],
        "vibration_delta_1h_24h": [
            sub(a, b)
            for a, b in zip(inputs["vibration_mean_1h"], inputs["vibration_mean_24h"], strict=True)
        ],
        "temperature_zscore_1h": zscore,
        "voltage_range_24h": [
            sub(a, b)
            for a, b in zip(inputs["voltage_max_24h"], inputs["voltage_mean_24h"], strict=True)
        ],
    }


SERVICE_PREFIX = "device_failure"
SERVICES: dict[int, tuple[str, ...]] = {
    1: (HOURLY.name, DAILY.name, DERIVED_VIEW),
    2: (HOURLY.name, DAILY.name, DERIVED_VIEW),
}
"""Feature service version -> the views it serves.

A model version records the service it was trained with (``device_failure_v<N>``); a new
set of features is a new version, never an edit of an existing one. Version 1 serves the
statistics; version 2 adds the coverage counts (``<sensor>_count_<window>``).
"""

COVERAGE_SINCE = 2
"""The first service version that serves the ``*_count_*`` coverage features."""


def _is_coverage(feature: str) -> bool:
    return "_count_" in feature


def service_members(version: int) -> dict[str, list[str]]:
    """View -> the features of it that the service of ``version`` serves."""
    service_name(version)
    out: dict[str, list[str]] = {}
    for view in SERVICES[version]:
        names = list(DERIVED) if view == DERIVED_VIEW else list(VIEWS[view].features)
        out[view] = [n for n in names if version >= COVERAGE_SINCE or not _is_coverage(n)]
    return out


def service_name(version: int) -> str:
    """The name of the feature service of ``version``, e.g. ``device_failure_v1``."""
    if version not in SERVICES:
        known = ", ".join(str(v) for v in SERVICES)
        raise ValueError(f"no feature service version {version}: known versions are {known}")
    return f"{SERVICE_PREFIX}_v{version}"


def all_features() -> dict[str, str]:
    """Every feature, as ``<view>:<feature>`` -> Feast type name."""
    out = {f"{v.name}:{f}": t for v in VIEWS.values() for f, t in v.features.items()}
    out.update({f"{DERIVED_VIEW}:{f}": t for f, t in DERIVED.items()})
    return out


def service_features(version: int) -> list[str]:
    """The ``<view>:<feature>`` references the service of ``version`` serves."""
    return [f"{view}:{f}" for view, names in service_members(version).items() for f in names]


def resolve_features(names: list[str] | None, version: int) -> list[str]:
    """Feature references for ``names`` (``view:feature`` or a bare, unique feature name).

    Args:
        names: requested features; None or empty means the service of ``version``.
        version: the feature service version.

    Raises:
        UnknownFeatureError: naming the unknown ones and listing the available ones.
    """
    from mlops_kit.features.errors import UnknownFeatureError

    if not names:
        return service_features(version)
    refs = all_features()
    by_name: dict[str, list[str]] = {}
    for ref in refs:
        by_name.setdefault(ref.split(":", 1)[1], []).append(ref)
    out, unknown = [], []
    for name in names:
        if name in refs:
            out.append(name)
        elif ":" not in name and len(by_name.get(name, [])) == 1:
            out.append(by_name[name][0])
        else:
            unknown.append(name)
    if unknown:
        raise UnknownFeatureError(unknown, sorted(refs))
    return list(dict.fromkeys(out))
