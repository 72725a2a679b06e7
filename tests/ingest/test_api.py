"""HTTP JSON API ingestion against a local paginated server that can misbehave."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from iot_fleet import GeneratorConfig, generate_readings, to_raw_records

from mlops_kit import storage
from mlops_kit.errors import IngestionError
from mlops_kit.ingest import api as api_module
from mlops_kit.ingest.api import ApiSourceConfig, cursor_uri, ingest_api, load_cursor
from mlops_kit.ingest.raw_zone import list_raw

SOURCE = "api-readings"
PAGE = 25


@dataclass
class FakeApi:
    """A paginated JSON API over synthetic readings, with scripted failures per page."""

    records: list[dict[str, Any]]
    url: str = ""
    script: dict[int, list[str]] = field(default_factory=dict)
    dead_from: int | None = None
    token: str | None = None
    retry_after: str = "0"
    tail: bool = False
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pages(self) -> int:
        return -(-len(self.records) // PAGE)


def _cursor(offset: int) -> str:
    return f"tok-{offset:06d}"


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        api: FakeApi = self.server.api
        parsed = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        with api.lock:
            api.requests.append(self.path)
        if parsed.path != "/v1/readings":
            self._send(404, b'{"error": "not found"}')
            return
        if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
            self._send(401, b'{"error": "unauthorized"}')
            return
        limit = int(query.get("limit", PAGE))
        cursor = query.get("cursor", _cursor(0))
        offset = int(cursor.split("-")[1])
        index = offset // limit
        with api.lock:
            action = api.script[index].pop(0) if api.script.get(index) else None
        if api.dead_from is not None and index >= api.dead_from:
            action = "drop"
        if action == "429":
            self._send(429, b"{}", {"Retry-After": api.retry_after})
            return
        if action == "503":
            self._send(503, b'{"error": "unavailable"}')
            return
        if action == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if action == "notjson":
            self._send(200, b"<html>upstream gateway error</html>")
            return
        items = api.records[offset : offset + limit]
        nxt = offset + limit
        next_value: str | None = _cursor(nxt) if nxt < len(api.records) else None
        if api.tail:  # a feed: the end of the data is a cursor to poll later
            next_value = _cursor(min(nxt, len(api.records)))
        if next_value and query.get("style") == "url":
            next_value = f"/v1/readings?style=url&limit={limit}&cursor={next_value}"
        body = {"data": {"items": items}, "meta": {"next": next_value}}
        self._send(200, json.dumps(body).encode())


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    table = generate_readings(GeneratorConfig(n_devices=3, steps=40))
    records = [json.loads(line) for line in to_raw_records(table).lines]
    api = FakeApi(records=records)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.api = api  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}/v1/readings"
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def lake(tmp_path) -> tuple[str, str]:
    return str(tmp_path / "raw"), str(tmp_path / "state")


def _config(api: FakeApi, **overrides: Any) -> ApiSourceConfig:
    values: dict[str, Any] = {
        "url": api.url,
        "items_field": "data.items",
        "next_cursor_field": "meta.next",
        "page_size": PAGE,
        "timeout_s": 5,
        "max_retries": 3,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 0.05,
    }
    values.update(overrides)
    return ApiSourceConfig(**values)


def _canon(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _landed_lines(raw: str) -> list[str]:
    lines: list[str] = []
    for uri in list_raw(raw, SOURCE):
        lines.extend(storage.read_bytes(uri).decode().splitlines())
    return lines


def _assert_exactly_once(api: FakeApi, raw: str) -> None:
    landed = _landed_lines(raw)
    assert Counter(landed) == Counter(_canon(r) for r in api.records)
    assert len(landed) == len(set(landed)) == len(api.records)


def test_every_record_lands_once_and_a_finished_run_is_a_no_op(fake_api, lake) -> None:
    raw, state = lake
    pages: list[api_module.ApiPage] = []
    result = ingest_api(_config(fake_api), raw, state, SOURCE, progress=pages.append)
    assert (result.pages, result.records) == (fake_api.pages(), len(fake_api.records))
    assert result.complete and result.cursor is None and result.retries == 0
    assert len(result.landed) == fake_api.pages() and all(o.created for o in result.landed)
    assert [p.number for p in pages] == list(range(1, fake_api.pages() + 1))
    assert pages[0].cursor is None and pages[-1].next_cursor is None
    _assert_exactly_once(fake_api, raw)
    saved = load_cursor(state, SOURCE)
    assert saved is not None and saved["complete"] and saved["records"] == len(fake_api.records)
    assert cursor_uri(state, SOURCE).endswith("api/api-readings/cursor.json")

    before = len(fake_api.requests)
    again = ingest_api(_config(fake_api), raw, state, SOURCE)
    assert again.complete and again.pages == 0 and len(fake_api.requests) == before
    restarted = ingest_api(_config(fake_api), raw, state, SOURCE, restart=True)
    assert restarted.pages == fake_api.pages() and not any(o.created for o in restarted.landed)
    _assert_exactly_once(fake_api, raw)


def test_page_bytes_are_stable_for_identical_items(fake_api, lake, tmp_path) -> None:
    raw, state = lake
    first = ingest_api(_config(fake_api), raw, state, SOURCE)
    # same items with keys in another order: same bytes, so same objects
    fake_api.records = [dict(reversed(list(r.items()))) for r in fake_api.records]
    other = ingest_api(_config(fake_api), str(tmp_path / "raw2"), str(tmp_path / "s2"), SOURCE)
    assert [o.sha256 for o in first.landed] == [o.sha256 for o in other.landed]


def test_429_503_and_dropped_connections_are_retried_and_counted(fake_api, lake) -> None:
    raw, state = lake
    fake_api.script = {1: ["429"], 2: ["503", "503"], 3: ["drop"]}
    fake_api.retry_after = "2"
    slept: list[float] = []
    result = ingest_api(_config(fake_api), raw, state, SOURCE, sleep=slept.append)
    assert result.retries == 4 and len(slept) == 4
    assert slept[0] == 2.0  # Retry-After honoured
    assert all(0 <= s <= 0.05 for s in slept[1:])  # jittered backoff, capped
    assert result.complete
    _assert_exactly_once(fake_api, raw)


def test_retry_after_as_http_date_is_honoured(fake_api, lake) -> None:
    raw, state = lake
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    fake_api.script = {0: ["429"]}
    fake_api.retry_after = format_datetime(when, usegmt=True)
    slept: list[float] = []
    ingest_api(_config(fake_api), raw, state, SOURCE, sleep=slept.append)
    assert len(slept) == 1 and 25 <= slept[0] <= 31


@pytest.mark.parametrize("status", [404, 401])
def test_other_4xx_fail_at_once_naming_url_and_status(fake_api, lake, status) -> None:
    raw, state = lake
    if status == 401:
        fake_api.token = "s3cret"
        cfg = _config(fake_api)
    else:
        cfg = _config(fake_api, url=fake_api.url.replace("/v1/readings", "/v1/nope"))
    with pytest.raises(IngestionError) as err:
        ingest_api(cfg, raw, state, SOURCE, sleep=lambda s: None)
    assert f"HTTP {status}" in str(err.value) and cfg.url in str(err.value)
    assert err.value.details["status"] == status
    assert len(fake_api.requests) == 1  # not retried
    assert list_raw(raw) == [] and load_cursor(state, SOURCE) is None


def test_bearer_token_and_headers_come_from_the_environment(fake_api, lake, monkeypatch) -> None:
    raw, state = lake
    fake_api.token = "s3cret"
    cfg = _config(fake_api, bearer_token_env="FAKE_API_TOKEN")
    monkeypatch.delenv("FAKE_API_TOKEN", raising=False)
    with pytest.raises(IngestionError, match="FAKE_API_TOKEN"):
        ingest_api(cfg, raw, state, SOURCE)
    monkeypatch.setenv("FAKE_API_TOKEN", "s3cret")
    assert ingest_api(cfg, raw, state, SOURCE).records == len(fake_api.records)


def test_resume_after_the_server_dies_mid_walk(fake_api, lake) -> None:
    raw, state = lake
    fake_api.dead_from = 2  # pages 1 and 2 answer, page 3 never does
    with pytest.raises(IngestionError) as err:
        ingest_api(_config(fake_api, max_retries=2), raw, state, SOURCE, sleep=lambda s: None)
    assert "after 2 retries" in str(err.value) and "run again to resume" in str(err.value)
    assert len(list_raw(raw, SOURCE)) == 2
    saved = load_cursor(state, SOURCE)
    assert saved is not None and saved["next_cursor"] == _cursor(2 * PAGE)

    fake_api.dead_from = None
    resumed = ingest_api(_config(fake_api), raw, state, SOURCE)
    assert resumed.resumed_from == _cursor(2 * PAGE)
    assert resumed.pages == fake_api.pages() - 2 and resumed.complete
    first_requests = [r for r in fake_api.requests if "cursor" not in r]
    assert len(first_requests) == 1  # page 1 was not fetched again
    _assert_exactly_once(fake_api, raw)


def test_kill_between_landing_and_saving_the_cursor(fake_api, lake, monkeypatch) -> None:
    raw, state = lake

    class Killed(BaseException):
        pass

    landed = {"n": 0}

    def fail_on_second_page(point: str) -> None:
        if point == "api.after_land":
            landed["n"] += 1
            if landed["n"] == 2:
                raise Killed

    monkeypatch.setattr(api_module, "maybe_fail", fail_on_second_page)
    with pytest.raises(Killed):
        ingest_api(_config(fake_api), raw, state, SOURCE)
    assert load_cursor(state, SOURCE)["next_cursor"] == _cursor(PAGE)  # type: ignore[index]
    monkeypatch.setattr(api_module, "maybe_fail", lambda point: None)
    resumed = ingest_api(_config(fake_api), raw, state, SOURCE)
    assert resumed.landed[0].created is False  # page 2 refetched: same bytes, not re-landed
    _assert_exactly_once(fake_api, raw)


def test_a_page_that_is_not_json_fails_clearly_and_lands_nothing(fake_api, lake) -> None:
    raw, state = lake
    fake_api.script = {2: ["notjson"]}
    with pytest.raises(IngestionError) as err:
        ingest_api(_config(fake_api), raw, state, SOURCE)
    message = str(err.value)
    assert "page 3" in message and _cursor(2 * PAGE) in message and "not JSON" in message
    assert "<html>" in message
    assert len(list_raw(raw, SOURCE)) == 2
    assert ingest_api(_config(fake_api), raw, state, SOURCE).complete
    _assert_exactly_once(fake_api, raw)


def test_a_page_without_the_items_field_names_the_field(fake_api, lake) -> None:
    raw, state = lake
    with pytest.raises(IngestionError, match=r"items_field 'rows'.*\['data', 'meta'\]"):
        ingest_api(_config(fake_api, items_field="rows"), raw, state, SOURCE)
    assert list_raw(raw) == []


def test_next_page_urls_and_max_pages(fake_api, lake) -> None:
    raw, state = lake
    cfg = _config(fake_api, cursor_style="url", params={"style": "url"})
    first = ingest_api(cfg, raw, state, SOURCE, max_pages=2)
    assert first.pages == 2 and not first.complete and first.cursor is not None
    rest = ingest_api(cfg, raw, state, SOURCE)
    assert rest.complete and first.pages + rest.pages == fake_api.pages()
    _assert_exactly_once(fake_api, raw)


def test_a_feed_ends_on_an_empty_page_and_continues_from_its_cursor(fake_api, lake) -> None:
    raw, state = lake
    fake_api.tail = True
    new = fake_api.records[100:]
    fake_api.records = fake_api.records[:100]
    first = ingest_api(_config(fake_api), raw, state, SOURCE)
    assert not first.complete and first.cursor == _cursor(100)
    assert first.pages == 5 and first.records == 100  # 4 full pages, then an empty one
    fake_api.records.extend(new)
    second = ingest_api(_config(fake_api), raw, state, SOURCE)
    assert second.resumed_from == _cursor(100) and second.records == len(new)
    _assert_exactly_once(fake_api, raw)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="http"):
        ApiSourceConfig(url="ftp://example.com")
    with pytest.raises(ValueError, match="extra"):
        ApiSourceConfig(url="http://x", item_field="x")  # type: ignore[call-arg]
