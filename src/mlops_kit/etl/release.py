"""Objects quarantined whole, and their release for another read.

An object the ETL could not read at all (see :mod:`mlops_kit.etl.decode`) is recorded in
its run's manifest and copied to the quarantine zone. :func:`release_object` lets the next
run read it again, optionally with a declared text encoding.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mlops_kit import storage
from mlops_kit.config import Settings
from mlops_kit.etl import lake
from mlops_kit.etl.errors import ReleaseError
from mlops_kit.etl.run import layout_of


def quarantined_objects(settings: Settings) -> list[dict[str, Any]]:
    """Objects quarantined whole by their latest run, with ``run_id`` and ``released``
    (True when a release is waiting for the next run)."""
    layout = layout_of(settings)
    latest: dict[str, dict[str, Any] | None] = {}
    for m in lake.manifests(layout):
        whole = {o["uri"]: o for o in m.get("objects_quarantined", [])}
        for uri in m.get("inputs", []):
            obj = whole.get(uri)
            latest[uri] = (
                {**obj, "run_id": m["run_id"], "committed_seq": m["committed_seq"]} if obj else None
            )
    released = lake.releases(layout)
    out = []
    for uri, obj in latest.items():
        if obj is None:
            continue
        rel = released.get(uri)
        out.append(
            {**obj, "released": rel is not None and rel["after_seq"] >= obj["committed_seq"]}
        )
    return out


def release_object(settings: Settings, uri: str, *, encoding: str | None = None) -> dict[str, Any]:
    """Let the next ETL run read a quarantined object again, optionally declaring its
    text encoding (for instance ``latin-1``).

    Raises:
        ReleaseError: when ``uri`` is not an object quarantined whole, or the encoding is
            not a codec Python knows.
    """
    storage.configure_from_settings(settings)
    quarantined = {o["uri"]: o for o in quarantined_objects(settings)}
    if uri not in quarantined:
        known = ", ".join(sorted(quarantined)) or "none"
        raise ReleaseError(
            f"'{uri}' is not an object quarantined whole, so there is nothing to release "
            f"(quarantined objects: {known}; list them with 'mlops-kit etl quarantined')"
        )
    if encoding:
        try:
            "".encode(encoding)
        except LookupError:
            raise ReleaseError(
                f"unknown encoding '{encoding}': use a Python codec name such as latin-1, "
                "cp1252 or utf-16"
            ) from None
    layout = layout_of(settings)
    release = {
        "uri": uri,
        "after_seq": len(lake.manifests(layout)),
        "encoding": encoding,
        "released_at": datetime.now(timezone.utc).isoformat(),
        "previous_reason": quarantined[uri]["reason"],
    }
    lake.write_release(layout, release)
    return release
