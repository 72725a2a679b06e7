"""Fixtures of the KFP tests: kfp.local, a synthetic lake with bad records, a paged HTTP API."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.config import Settings, load_settings

N_DEVICES = 6


@pytest.fixture
def kfp_local(tmp_path: Path) -> Path:
    """kfp.local with the subprocess runner on this interpreter; returns the pipeline root."""
    local = pytest.importorskip("kfp.local")
    root = tmp_path / "kfp-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


@dataclass
class Lake:
    """A local-profile home holding a device registry, a drop folder and a stream file."""

    home: Path
    drop: Path
    settings: Settings
    lines: Counter[str] = field(default_factory=Counter)
    """Raw records written per source (files, stream, api)."""
    injected: Counter[str] = field(default_factory=Counter)
    """Bad records injected, by kind (the ground truth of the quarantine)."""

    @property
    def settings_json(self) -> str:
        return json.dumps({"home": str(self.home)})

    def settings_json_with(self, **overrides: Any) -> str:
        return json.dumps({"home": str(self.home), **overrides})


@pytest.fixture
def lake(home: Path, tmp_path: Path) -> Lake:
    """Synthetic readings of a small fleet: a JSON-lines file to drop and stream records.

    Both carry injected bad records; the device registry is written.
    """
    from iot_fleet import (
        GeneratorConfig,
        device_registry,
        generate_readings,
        to_raw_records,
    )

    from mlops_kit.etl import write_device_registry
    from mlops_kit.ingest.streams import LocalStreamProducer

    settings = load_settings(home=str(home))
    write_device_registry(settings, device_registry(N_DEVICES))
    table = generate_readings(GeneratorConfig(n_devices=N_DEVICES, steps=100))
    drop = tmp_path / "drop"
    (drop / "_skipped").mkdir(parents=True)
    files = to_raw_records(table.slice(0, 400), bad_rate=0.05, seed=3)
    (drop / "readings-1.jsonl").write_bytes(files.to_bytes())
    (drop / "_skipped" / "ignored.jsonl").write_bytes(b'{"not": "data"}\n')
    (drop / "notes.txt").write_text("not a data file")
    stream = to_raw_records(table.slice(400, 150), bad_rate=0.05, seed=4)
    LocalStreamProducer(settings.stream.local_path).put_records(stream.lines)
    out = Lake(home=home, drop=drop, settings=settings)
    out.lines.update({"files": len(files.lines), "stream": len(stream.lines)})
    out.injected.update(files.injected)
    out.injected.update(stream.injected)
    return out


@dataclass
class ApiServer:
    url: str
    items: list[dict[str, Any]]
    requests: list[str]


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """A paged JSON API on loopback: ``{"items": [...], "next": <cursor or null>}``."""
    from iot_fleet import GeneratorConfig, generate_readings, to_raw_records

    table = generate_readings(GeneratorConfig(n_devices=N_DEVICES, steps=100)).slice(550, 50)
    items = [json.loads(line) for line in to_raw_records(table).lines]
    page_size = 20
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            start = int(query.get("cursor", ["0"])[0])
            end = start + page_size
            body = json.dumps(
                {"items": items[start:end], "next": str(end) if end < len(items) else None}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ApiServer(f"http://127.0.0.1:{server.server_port}/readings", items, requests)
    finally:
        server.shutdown()
        server.server_close()
