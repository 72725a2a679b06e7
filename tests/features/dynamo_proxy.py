"""A small HTTP proxy in front of moto's server that throttles DynamoDB's BatchWriteItem.

moto processes every item of a ``BatchWriteItem``; DynamoDB under load leaves some in
``UnprocessedItems``. The proxy forwards every request to moto unchanged, except the
first ``throttle`` BatchWriteItem calls (all of them with ``throttle=None``): of those it
forwards only the first ``keep`` items of each table to moto and answers the rest as
unprocessed, as DynamoDB does. It records the item count of every BatchWriteItem it saw.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

BATCH_WRITE = "DynamoDB_20120810.BatchWriteItem"


class ThrottlingProxy:
    """State shared by the proxy's handler threads (see the module docstring)."""

    def __init__(self, upstream: str, throttle: int | None, keep: int) -> None:
        self.upstream = urlsplit(upstream)
        self.throttle = throttle
        self.keep = keep
        self.batch_sizes: list[int] = []
        self.throttled = 0
        self.lock = threading.Lock()
        self.endpoint = ""

    def split(self, body: bytes) -> tuple[bytes, dict[str, list[Any]] | None]:
        """The body to forward and the unprocessed items to answer (None: no throttling)."""
        request = json.loads(body)
        items: dict[str, list[Any]] = request["RequestItems"]
        with self.lock:
            self.batch_sizes.append(sum(len(v) for v in items.values()))
            if self.throttle is not None and self.throttled >= self.throttle:
                return body, None
            self.throttled += 1
        forward = {t: v[: self.keep] for t, v in items.items() if v[: self.keep]}
        left = {t: v[self.keep :] for t, v in items.items() if v[self.keep :]}
        return json.dumps({**request, "RequestItems": forward}).encode(), left


def _handler(proxy: ThrottlingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            out = resp.status, resp.getheaders(), resp.read()
            conn.close()
            return out

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            left = None
            if self.headers.get("X-Amz-Target") == BATCH_WRITE:
                body, left = proxy.split(body)
            if left is None:
                self._reply(*self._forward(body))
                return
            if json.loads(body)["RequestItems"]:
                status = self._forward(body)[0]
                assert status == 200, status
            answer = json.dumps({"UnprocessedItems": left}).encode()
            self._reply(200, [("Content-Type", "application/x-amz-json-1.0")], answer)

    return Handler


@contextmanager
def throttling_proxy(
    upstream: str, throttle: int | None, keep: int = 0
) -> Iterator[ThrottlingProxy]:
    """Run a :class:`ThrottlingProxy` in front of ``upstream`` on a free loopback port."""
    proxy = ThrottlingProxy(upstream, throttle, keep)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
