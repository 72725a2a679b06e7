"""The device registry: the known devices the referential quality rule accepts.

Stored as Parquet (a ``device_id`` column at least) under the processed zone; filled from
the user's own fleet list (:func:`register_devices`, ``mlops-kit data register-devices``)
or by the synthetic generator.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mlops_kit import storage
from mlops_kit.errors import MlopsKitError

if TYPE_CHECKING:
    from mlops_kit.config import Settings


def device_registry_uri(settings: Settings) -> str:
    return storage.join(settings.storage.processed_uri or "", "reference", "devices.parquet")


def write_device_registry(settings: Settings, devices: pa.Table) -> str:
    """Store the known devices (a ``device_id`` column at least); returns the URI."""
    if "device_id" not in devices.column_names:
        raise MlopsKitError("the device registry needs a 'device_id' column")
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
    """Add devices to the registry from a file (CSV, JSON lines or Parquet with a
    ``device_id`` column) and/or a list of ids; ids are trimmed, blanks refused.

    Returns:
        ``uri``, ``devices`` (in the registry now) and ``added``.
    """
    storage.configure_from_settings(settings)
    new: list[str] = list(ids or [])
    if source is not None:
        new += _device_ids_from(str(source))
    cleaned = [str(d).strip() for d in new]
    if any(not d for d in cleaned):
        raise MlopsKitError("a device id is empty: remove blank ids from the input")
    existing: list[str] = []
    if not replace and storage.exists(device_registry_uri(settings)):
        existing = read_device_registry(settings).to_pylist()
    merged = list(dict.fromkeys([*existing, *cleaned]))
    uri = write_device_registry(settings, pa.table({"device_id": pa.array(merged, pa.string())}))
    return {"uri": uri, "devices": len(merged), "added": len(merged) - len(existing)}


def _device_ids_from(path: str) -> list[str]:
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
                convert_options=pcsv.ConvertOptions(column_types={"device_id": pa.string()}),
            )
        elif lower.endswith((".jsonl", ".ndjson", ".json")):
            table = pjson.read_json(io.BytesIO(data))
        else:
            raise MlopsKitError(
                f"cannot read devices from '{path}': use a .csv, .jsonl or .parquet file"
            )
    except pa.ArrowException as exc:
        raise MlopsKitError(f"cannot read devices from '{path}': {exc}") from None
    if "device_id" not in table.column_names:
        raise MlopsKitError(
            f"'{path}' has no device_id column (columns: {', '.join(table.column_names)})"
        )
    return [str(d) for d in table["device_id"].drop_null().to_pylist()]


def read_device_registry(settings: Settings) -> pa.Array:
    uri = device_registry_uri(settings)
    if not storage.exists(uri):
        raise MlopsKitError(
            f"no device registry at {uri}: the referential rule needs the known devices. "
            "Register your devices with 'mlops-kit data register-devices FILE' (a CSV, "
            "JSON lines or Parquet file with a device_id column) or "
            "mlops_kit.etl.write_device_registry(settings, table)"
        )
    return storage.read_parquet(uri, columns=["device_id"])["device_id"].combine_chunks()
