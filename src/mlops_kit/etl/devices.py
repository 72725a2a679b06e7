"""The registry of known entity ids the referential quality rule accepts.

Stored as Parquet (the spec's join key column, ``device_id`` for the IoT dataset) at
``<processed_uri>/reference/<entity>s.parquet``; filled from the user's own list
(:func:`register_devices`, ``mlops-kit data register-devices``) or by a generator. Ids
are cleaned as the spec says before they are stored.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mlops_kit import storage
from mlops_kit.etl.errors import KnownIdsError

if TYPE_CHECKING:
    from mlops_kit.config import Settings


def _entity(settings: Settings) -> tuple[str, str, str]:
    """(entity name, join key, cleaning) of the settings' dataset spec."""
    from mlops_kit.data.spec import spec_of

    e = spec_of(settings).entity
    return e.name, e.join_key, e.clean


def _clean(value: str, how: str) -> str:
    if how == "none":
        return value
    value = value.strip()
    return (
        value.lower() if how == "strip_lower" else value.upper() if how == "strip_upper" else value
    )


def device_registry_uri(settings: Settings) -> str:
    """Where the known ids of the settings' entity are kept."""
    entity, _, _ = _entity(settings)
    return storage.join(settings.storage.processed_uri or "", "reference", f"{entity}s.parquet")


def write_device_registry(settings: Settings, devices: pa.Table) -> str:
    """Store the known ids (a column named as the spec's join key); returns the URI."""
    entity, key, _ = _entity(settings)
    if key not in devices.column_names:
        raise KnownIdsError(
            f"the registry of known {entity}s needs a {key!r} column "
            f"(got {', '.join(devices.column_names)})"
        )
    uri = device_registry_uri(settings)
    storage.write_parquet(uri, devices)
    return uri


def register_devices(
    settings: Settings,
    source: str | os.PathLike[str] | None = None,
    ids: list[str] | None = None,
    *,
    replace: bool = False,
) -> dict[str, Any]:
    """Add known ids to the registry from a file (CSV, JSON lines or Parquet with a column
    named as the spec's join key) and/or a list; ids are cleaned as the spec says, blanks
    refused.

    Returns:
        ``uri``, ``devices`` (ids in the registry now) and ``added``.
    """
    storage.configure_from_settings(settings)
    entity, key, how = _entity(settings)
    new: list[str] = list(ids or [])
    if source is not None:
        new += _device_ids_from(str(source), key)
    cleaned = [_clean(str(d), how) for d in new]
    if any(not d.strip() for d in cleaned):
        raise KnownIdsError(f"a {entity} id is empty: remove blank ids from the input")
    existing: list[str] = []
    if not replace and storage.exists(device_registry_uri(settings)):
        existing = read_device_registry(settings).to_pylist()
    merged = list(dict.fromkeys([*existing, *cleaned]))
    uri = write_device_registry(settings, pa.table({key: pa.array(merged, pa.string())}))
    return {"uri": uri, "devices": len(merged), "added": len(merged) - len(existing)}


def _device_ids_from(path: str, key: str) -> list[str]:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson

    data = storage.read_bytes(path)
    lower = path.lower()
    try:
        if lower.endswith(".parquet"):
            table = storage.read_parquet(path)
        elif lower.endswith(".csv"):
            table = pcsv.read_csv(
                io.BytesIO(data),
                convert_options=pcsv.ConvertOptions(column_types={key: pa.string()}),
            )
        elif lower.endswith((".jsonl", ".ndjson", ".json")):
            table = pjson.read_json(io.BytesIO(data))
        else:
            raise KnownIdsError(
                f"cannot read ids from '{path}': use a .csv, .jsonl or .parquet file"
            )
    except pa.ArrowException as exc:
        raise KnownIdsError(f"cannot read ids from '{path}': {exc}") from None
    if key not in table.column_names:
        raise KnownIdsError(
            f"'{path}' has no {key} column (columns: {', '.join(table.column_names)})"
        )
    return [str(d) for d in table[key].drop_null().to_pylist()]


def read_device_registry(settings: Settings) -> pa.Array:
    """The known ids of the settings' entity."""
    entity, key, _ = _entity(settings)
    uri = device_registry_uri(settings)
    if not storage.exists(uri):
        raise KnownIdsError(
            f"no registry of known {entity}s at {uri}: the referential rule needs them. "
            "Register them with 'mlops-kit data register-devices FILE' (a CSV, JSON lines "
            f"or Parquet file with a {key} column) or "
            "mlops_kit.etl.write_device_registry(settings, table)"
        )
    return storage.read_parquet(uri, columns=[key])[key].combine_chunks()
