"""Committed state of the processed zone: run manifests, a journal, and roll-forward.

A run's outputs are written to a staging area first. The commit then

1. writes a *journal* (the moves, deletes and warehouse load it is about to do),
2. moves the staged files to their final paths,
3. loads the warehouse (one transaction, idempotent by run id),
4. writes the run's *manifest* — the commit point, written last,
5. deletes the files the run replaced, then the journal.

Readers go through the manifests: the live files are those added by committed runs
and not removed by a later one. A crash before step 4 leaves the previous state
visible; a crash after it leaves the new one; :func:`recover` (run at the start of
every ETL run) rolls a journaled commit forward and discards unjournaled staging, so
the next run completes the work.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mlops_kit import storage
from mlops_kit._faults import maybe_fail


@dataclass
class Layout:
    """Where the ETL keeps things."""

    processed_uri: str
    quarantine_uri: str
    reports_uri: str
    state_uri: str

    @property
    def manifests(self) -> str:
        return storage.join(self.state_uri, "etl", "manifests")

    @property
    def journals(self) -> str:
        return storage.join(self.state_uri, "etl", "journal")

    def staging(self, run_id: str) -> str:
        return storage.join(self.state_uri, "etl", "staging", run_id)

    @property
    def staging_root(self) -> str:
        return storage.join(self.state_uri, "etl", "staging")


def manifests(layout: Layout) -> list[dict[str, Any]]:
    """Committed run manifests, oldest first."""
    return [storage.read_json(uri) for uri in storage.list_files(layout.manifests, ".json")]


def live_files(layout: Layout, table: str) -> list[str]:
    """The files of ``table`` as of the last committed run."""
    live: dict[str, None] = {}
    for m in manifests(layout):
        out = m.get("outputs", {}).get(table, {})
        for uri in out.get("removed", []):
            live.pop(uri, None)
        for uri in out.get("added", []):
            live[uri] = None
    return list(live)


def open_commits(layout: Layout) -> list[str]:
    """Run ids whose commit has begun and not finished (a journal exists).

    While a commit is open its moved files and the files it replaces are both in the
    processed folders; a reader that lists a folder instead of the manifests must wait
    (or, after a crash, let the next ETL run roll the commit forward).
    """
    return [
        os.path.basename(uri).removesuffix(".json")
        for uri in storage.list_files(layout.journals, ".json")
    ]


def processed_inputs(layout: Layout) -> set[str]:
    """Raw objects already consumed by a committed run.

    An object released after its run (see :func:`write_release`) is pending again until a
    later run consumes it.
    """
    released = releases(layout)
    done: set[str] = set()
    for m in manifests(layout):
        for uri in m.get("inputs", []):
            rel = released.get(uri)
            if rel is None or m["committed_seq"] > rel["after_seq"]:
                done.add(uri)
    return done


def _release_uri(layout: Layout, uri: str) -> str:
    import hashlib

    name = hashlib.sha256(uri.encode()).hexdigest()[:32]
    return storage.join(layout.state_uri, "etl", "releases", f"{name}.json")


def releases(layout: Layout) -> dict[str, dict[str, Any]]:
    """Released objects by URI: ``after_seq`` (the last run before the release) and the
    options declared with it (``encoding``)."""
    root = storage.join(layout.state_uri, "etl", "releases")
    out = {}
    for uri in storage.list_files(root, ".json"):
        rel = storage.read_json(uri)
        out[rel["uri"]] = rel
    return out


def write_release(layout: Layout, release: dict[str, Any]) -> str:
    """Record a release (``uri``, ``after_seq``, options); returns where it was written."""
    target = _release_uri(layout, release["uri"])
    storage.write_json(target, release)
    return target


@dataclass
class Commit:
    """The staged outputs of one run and how to make them visible."""

    layout: Layout
    run_id: str
    moves: list[tuple[str, str]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    warehouse: dict[str, Any] | None = None

    def stage(
        self, final_uri: str, table: pa.Table, prefix: str = "", **parquet_options: Any
    ) -> str:
        """Write ``table`` as Parquet to staging; the commit moves it to ``final_uri``.

        ``prefix`` keeps the staged names of several writers of one run apart."""
        rel = prefix + str(len(self.moves)).zfill(6) + "-" + os.path.basename(final_uri)
        staged = storage.join(self.layout.staging(self.run_id), rel)
        storage.write_parquet(staged, table, **parquet_options)
        self.moves.append((staged, final_uri))
        return staged

    def stage_bytes(self, final_uri: str, data: bytes) -> str:
        """Write ``data`` as it is to staging; the commit moves it to ``final_uri``."""
        rel = str(len(self.moves)).zfill(6) + "-" + os.path.basename(final_uri)
        staged = storage.join(self.layout.staging(self.run_id), rel)
        storage.write_bytes(staged, data)
        self.moves.append((staged, final_uri))
        return staged

    def replace(self, uris: Iterable[str]) -> None:
        """Files that this run replaces (deleted after the commit point)."""
        self.deletes.extend(uris)

    def journal_uri(self) -> str:
        return storage.join(self.layout.journals, f"{self.run_id}.json")

    def commit(self, manifest: dict[str, Any], load: Callable[[dict[str, Any]], None]) -> None:
        """Make the run visible (see the module docstring for the steps)."""
        journal = {
            "run_id": self.run_id,
            "moves": self.moves,
            "deletes": self.deletes,
            "warehouse": self.warehouse,
            "manifest": manifest,
        }
        storage.write_json(self.journal_uri(), journal)
        maybe_fail("etl.after_journal")
        _roll_forward(self.layout, journal, load)


def _manifest_uri(layout: Layout, manifest: dict[str, Any]) -> str:
    return storage.join(
        layout.manifests, f"{manifest['committed_seq']:08d}-{manifest['run_id']}.json"
    )


def _roll_forward(
    layout: Layout, journal: dict[str, Any], load: Callable[[dict[str, Any]], None]
) -> None:
    for i, (src, dst) in enumerate(journal["moves"]):
        if storage.exists(src):
            storage.move(src, dst)
        if i == 0:
            maybe_fail("etl.mid_moves")
    maybe_fail("etl.after_moves")
    if journal.get("warehouse"):
        load(journal["warehouse"])
    maybe_fail("etl.after_warehouse")
    manifest = journal["manifest"]
    if not any(m["run_id"] == manifest["run_id"] for m in manifests(layout)):
        storage.write_json(_manifest_uri(layout, manifest), manifest)
    maybe_fail("etl.after_manifest")
    for uri in journal["deletes"]:
        storage.delete(uri)
    storage.delete(storage.join(layout.journals, f"{journal['run_id']}.json"))
    storage.delete_tree(layout.staging(journal["run_id"]))


def recover(layout: Layout, load: Callable[[dict[str, Any]], None]) -> list[str]:
    """Complete journaled commits and discard staging that never reached a journal.

    Returns:
        The run ids that were rolled forward.
    """
    rolled = []
    journaled = set()
    for uri in storage.list_files(layout.journals, ".json"):
        journal = json.loads(storage.read_bytes(uri))
        journaled.add(journal["run_id"])
        _roll_forward(layout, journal, load)
        rolled.append(journal["run_id"])
    for uri in storage.list_files(layout.staging_root):
        rel = storage.resolve(uri)[1][len(storage.resolve(layout.staging_root)[1]) :].lstrip("/")
        run_id = rel.split("/", 1)[0]
        if run_id not in journaled:
            storage.delete(uri)
    if not storage.list_files(layout.staging_root):
        storage.delete_tree(layout.staging_root)
    return rolled
