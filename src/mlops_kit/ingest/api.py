"""Batch ingestion from an HTTP JSON API into the raw zone, resumable page by page.

The API is walked with a cursor: each response carries its items and the cursor of the
next page. Every page lands as one JSON-lines object in the raw zone (one item per line,
serialised with sorted keys so identical items give identical bytes), and only then is the
cursor of the following page saved under ``<state_uri>/api/<source>/cursor.json``. A run
that is killed or fails part-way is resumed by running it again: it starts at the first
page that had not landed, and a page fetched twice lands once (the raw zone is
content-addressed).

Example:
    >>> from mlops_kit.ingest.api import ApiSourceConfig, ingest_api
    >>> cfg = ApiSourceConfig(url="https://api.example.com/v1/readings", items_field="data")
    >>> result = ingest_api(cfg, raw_uri="lake/raw", state_uri="lake/_state", source="api-readings")
    ... # doctest: +SKIP
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_kit import storage
from mlops_kit._faults import maybe_fail
from mlops_kit.errors import IngestionError
from mlops_kit.ingest.raw_zone import LandedObject, check_source, land

Sleep = Callable[[float], None]

_RETRYABLE_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    socket.timeout,
)


class ApiSourceConfig(BaseModel):
    """Where an HTTP JSON API is and how its pages are read.

    A page is a JSON object; its items sit at ``items_field`` and the cursor of the next
    page at ``next_cursor_field`` (both dotted paths, e.g. ``"data.items"``). The walk ends
    on a page without a next cursor (missing, ``null`` or ``""``), or on an empty page.

    Attributes:
        url: the endpoint of the first page (``http://`` or ``https://``).
        params: query parameters sent with every page.
        items_field: dotted path of the list of items in a page; ``""`` when the page
            itself is the list (a single page then, as there is no cursor).
        next_cursor_field: dotted path of the next page's cursor; ``None`` for an API that
            answers with one page.
        cursor_param: query parameter that carries the cursor (``cursor_style="token"``).
        cursor_style: ``"token"``: the cursor is an opaque value sent in ``cursor_param``;
            ``"url"``: the cursor is the next page's URL (absolute or relative).
        page_size_param: query parameter for the page size; ``None`` to send none.
        page_size: value of ``page_size_param``.
        headers: extra request headers.
        headers_from_env: header name -> environment variable holding its value (secrets
            stay out of configuration files).
        bearer_token_env: environment variable holding a bearer token, sent as
            ``Authorization: Bearer <token>``.
        timeout_s: socket timeout of one request.
        max_retries: retries of one page after a 429, a 5xx or a connection error.
        backoff_base_s: first backoff; attempt ``n`` waits a random time up to
            ``min(backoff_cap_s, backoff_base_s * 2**n)`` (exponential with full jitter).
        backoff_cap_s: longest backoff between two attempts.
        max_retry_after_s: longest wait honoured from a ``Retry-After`` header.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., description="Endpoint of the first page.")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    items_field: str = "items"
    next_cursor_field: str | None = "next"
    cursor_param: str = "cursor"
    cursor_style: Literal["token", "url"] = "token"
    page_size_param: str | None = "limit"
    page_size: int | None = Field(100, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    bearer_token_env: str | None = None
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_cap_s: float = Field(30.0, ge=0)
    max_retry_after_s: float = Field(300.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ApiSourceConfig:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url '{self.url}' must start with http:// or https://")
        if self.items_field == "" and self.next_cursor_field is not None:
            raise ValueError(
                "items_field '' (the page is the list) leaves no place for a cursor: "
                "set next_cursor_field to None"
            )
        return self


@dataclass(frozen=True)
class ApiPage:
    """One page that was read and landed (passed to the progress callback).

    Attributes:
        number: 1-based page number within this run.
        cursor: the cursor the page was fetched with (``None`` for the first page).
        next_cursor: the cursor of the following page (``None`` at the end).
        records: items in the page.
        landed: the raw-zone object (``None`` for an empty page, which lands nothing).
    """

    number: int
    cursor: Any
    next_cursor: Any
    records: int
    landed: LandedObject | None


@dataclass
class ApiIngestResult:
    """What one :func:`ingest_api` run did.

    Attributes:
        source: the raw-zone source name.
        pages: pages fetched and landed in this run.
        records: items in those pages.
        landed: the raw-zone objects (``created=False`` for a page whose bytes had landed).
        cursor: the cursor the next run starts from (``None`` once the API is exhausted).
        complete: True when the last page was reached.
        retries: requests repeated after a 429, a 5xx or a connection error.
        resumed_from: the saved cursor this run started from, if any.
    """

    source: str
    pages: int = 0
    records: int = 0
    landed: list[LandedObject] = field(default_factory=list)
    cursor: Any = None
    complete: bool = False
    retries: int = 0
    resumed_from: Any = None


def cursor_uri(state_uri: str, source: str) -> str:
    """Where the cursor of ``source`` is saved: ``<state_uri>/api/<source>/cursor.json``."""
    return storage.join(state_uri, "api", source, "cursor.json")


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _jsonl(items: list[Any]) -> bytes:
    lines = [
        json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        for item in items
    ]
    return ("\n".join(lines) + "\n").encode()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class _Client:
    """GET with retries, exponential backoff with full jitter and ``Retry-After``."""

    def __init__(self, cfg: ApiSourceConfig, sleep: Sleep) -> None:
        self.cfg = cfg
        self.sleep = sleep
        self.retries = 0
        self.headers = {"Accept": "application/json", **cfg.headers}
        for header, env in cfg.headers_from_env.items():
            self.headers[header] = _env(env, f"header '{header}'")
        if cfg.bearer_token_env:
            token = _env(cfg.bearer_token_env, "the bearer token")
            self.headers["Authorization"] = f"Bearer {token}"

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.cfg.backoff_cap_s, self.cfg.backoff_base_s * 2**attempt)
        return random.uniform(0.0, ceiling)

    def get(self, url: str, where: str) -> bytes:
        attempt = 0
        while True:
            request = urllib.request.Request(url, headers=self.headers, method="GET")
            try:
                with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                    return bytes(response.read())
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                exc.close()
                if status != 429 and status < 500:
                    hint = {
                        401: "check the credentials (bearer_token_env / headers_from_env)",
                        403: "check the credentials and their permissions",
                        404: "check the url and the cursor parameter",
                    }.get(status, "fix the request (url, params, headers)")
                    raise IngestionError(
                        f"GET {url} failed with HTTP {status} at {where}: not retried; {hint}",
                        url=url,
                        status=status,
                    ) from None
                reason = f"HTTP {status}"
                delay = (
                    min(retry_after, self.cfg.max_retry_after_s)
                    if retry_after is not None
                    else self._backoff(attempt)
                )
            except _RETRYABLE_NETWORK_ERRORS as exc:
                status = None
                reason = f"{type(exc).__name__}: {exc}"
                delay = self._backoff(attempt)
            if attempt >= self.cfg.max_retries:
                raise IngestionError(
                    f"GET {url} failed at {where} after {attempt} retries (last: {reason}); "
                    "the cursor of the last landed page is saved: run again to resume, or "
                    "raise max_retries / backoff_cap_s for a flaky API",
                    url=url,
                    status=status,
                )
            attempt += 1
            self.retries += 1
            self.sleep(delay)


def _env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise IngestionError(
            f"environment variable {name} (for {what}) is not set: export it before ingesting"
        )
    return value


def _page_url(cfg: ApiSourceConfig, cursor: Any) -> str:
    if cursor is not None and cfg.cursor_style == "url":
        return urllib.parse.urljoin(cfg.url, str(cursor))
    params: dict[str, Any] = dict(cfg.params)
    if cfg.page_size_param and cfg.page_size is not None:
        params[cfg.page_size_param] = cfg.page_size
    if cursor is not None:
        params[cfg.cursor_param] = cursor
    if not params:
        return cfg.url
    query = urllib.parse.urlencode(
        {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
    )
    return f"{cfg.url}{'&' if urllib.parse.urlparse(cfg.url).query else '?'}{query}"


def _parse_page(cfg: ApiSourceConfig, body: bytes, url: str, where: str) -> tuple[list[Any], Any]:
    try:
        page = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        preview = body[:80].decode("utf-8", "replace")
        raise IngestionError(
            f"{where} from {url} is not JSON ({exc}; starts with {preview!r}): nothing of "
            "it landed and the cursor still points at it; fix the API or the url and run again",
            url=url,
        ) from None
    if cfg.items_field == "":
        items = page
    else:
        items = _dig(page, cfg.items_field)
        if items is None and isinstance(page, Mapping):
            items = [] if cfg.items_field in page else None
    if not isinstance(items, list):
        keys = sorted(page) if isinstance(page, Mapping) else type(page).__name__
        raise IngestionError(
            f"{where} from {url} has no list at items_field '{cfg.items_field}' (found {keys}): "
            "nothing of it landed; set items_field to the field that holds the items",
            url=url,
        )
    next_cursor = _dig(page, cfg.next_cursor_field) if cfg.next_cursor_field else None
    if next_cursor == "":
        next_cursor = None
    return items, next_cursor


def ingest_api(
    config: ApiSourceConfig,
    raw_uri: str,
    state_uri: str,
    source: str,
    *,
    max_pages: int | None = None,
    restart: bool = False,
    ingest_date: date | None = None,
    progress: Callable[[ApiPage], None] | None = None,
    sleep: Sleep = time.sleep,
) -> ApiIngestResult:
    """Land every page of an HTTP JSON API in the raw zone, resuming a previous run.

    Each page lands as one JSON-lines object (``land(raw_uri, source, data, "jsonl")``);
    the next page's cursor is saved after that, so a killed or failed run, run again,
    starts at the first page that had not landed. A run that reached the last page (no
    next cursor) leaves the cursor marked complete; running it again fetches nothing unless
    ``restart=True``. An empty page that still carries a next cursor (a feed that has no
    new items yet) ends the run with that cursor saved: the next run continues from it.

    Args:
        config: the API and how its pages are read.
        raw_uri: root of the raw zone.
        state_uri: root of the state (the cursor goes to ``<state_uri>/api/<source>/``).
        source: raw-zone source name, e.g. ``"api-weather"``.
        max_pages: stop after this many pages (the cursor is kept for the next run).
        restart: ignore the saved cursor and start at the first page (pages whose bytes
            already landed are not written again).
        ingest_date: date partition of the landed objects (today in UTC by default).
        progress: called after each page with an :class:`ApiPage`.
        sleep: how to wait between retries (tests pass a recorder).

    Returns:
        The pages, records, landed objects, final cursor and retries of this run.

    Raises:
        IngestionError: a 4xx other than 429 (naming the URL and status), retries
            exhausted, a page that is not JSON or has no item list, an unset credential
            variable, or a cursor that does not advance.
    """
    check_source(source)
    state_path = cursor_uri(state_uri, source)
    result = ApiIngestResult(source=source)
    cursor: Any = None
    totals = {"pages": 0, "records": 0}
    if not restart and storage.exists(state_path):
        state = storage.read_json(state_path)
        if state.get("url") not in (None, config.url):
            raise IngestionError(
                f"the cursor at {state_path} belongs to {state.get('url')}, not {config.url}: "
                "use another source name, or pass restart=True to walk the new URL from its "
                "first page"
            )
        totals = {"pages": int(state.get("pages", 0)), "records": int(state.get("records", 0))}
        if state.get("complete"):
            result.complete = True
            result.cursor = None
            return result
        cursor = state.get("next_cursor")
        result.resumed_from = cursor
    client = _Client(config, sleep)
    try:
        while max_pages is None or result.pages < max_pages:
            number = result.pages + 1
            url = _page_url(config, cursor)
            where = f"page {number} of this run (cursor {cursor!r})"
            body = client.get(url, where)
            items, next_cursor = _parse_page(config, body, url, where)
            if next_cursor is not None and next_cursor == cursor and items:
                raise IngestionError(
                    f"{where} from {url} returned its own cursor as the next one: the walk "
                    f"would not advance; check next_cursor_field ('{config.next_cursor_field}')"
                )
            landed = None
            if items:
                landed = land(raw_uri, source, _jsonl(items), "jsonl", ingest_date)
                result.landed.append(landed)
                maybe_fail("api.after_land")
            result.pages += 1
            result.records += len(items)
            totals["pages"] += 1
            totals["records"] += len(items)
            storage.write_json(
                state_path,
                {
                    "version": 1,
                    "source": source,
                    "url": config.url,
                    "next_cursor": next_cursor,
                    "complete": next_cursor is None,
                    "pages": totals["pages"],
                    "records": totals["records"],
                    "last_object": landed.uri if landed else None,
                    "updated_at": datetime.now(timezone.utc).isoformat(),
                },
            )
            if progress is not None:
                progress(ApiPage(number, cursor, next_cursor, len(items), landed))
            cursor = next_cursor
            if next_cursor is None:
                result.complete = True
                break
            if not items:  # an empty page: nothing new yet; the next run asks again
                break
    except IngestionError as exc:
        exc.details.update(retries=client.retries, pages_landed=result.pages, cursor=cursor)
        raise
    result.retries = client.retries
    result.cursor = cursor
    return result


def load_cursor(state_uri: str, source: str) -> dict[str, Any] | None:
    """The saved cursor state of ``source`` (``None`` before the first page landed)."""
    path = cursor_uri(state_uri, source)
    return storage.read_json(path) if storage.exists(path) else None


__all__ = [
    "ApiIngestResult",
    "ApiPage",
    "ApiSourceConfig",
    "cursor_uri",
    "ingest_api",
    "load_cursor",
]
