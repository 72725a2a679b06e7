"""A small HTTP JSON API serving records in cursor-paginated pages, on loopback.

It stands in for an external partner API in the demo, examples and tests::

    with serve_records(lines, page_size=500) as url:
        ingest_api(ApiSourceConfig(url=url), raw_uri, state_uri, "api-partner")

Pages look like ``{"items": [...], "next": "<cursor or null>"}``; the cursor is the
offset of the next page. Lines that are not valid JSON are served as strings, as a
sloppy partner would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _items(lines: list[str]) -> list[object]:
    out: list[object] = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(line)
    return out


@contextmanager
def serve_records(lines: list[str], page_size: int = 500) -> Iterator[str]:
    """Serve ``lines`` as paginated JSON on 127.0.0.1; yields the first page's URL."""
    items = _items(lines)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            start = int(query.get("cursor", ["0"])[0])
            size = int(query.get("limit", [str(page_size)])[0])
            page = items[start : start + size]
            nxt = str(start + size) if start + size < len(items) else None
            body = json.dumps({"items": page, "next": nxt}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/readings"
    finally:
        server.shutdown()
        server.server_close()
