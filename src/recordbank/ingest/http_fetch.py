"""Fetching the pages of an HTTP JSON source and taking the records out of them.

Pagination: page numbers (until a page has no records), a cursor read from each page (until it
is null or empty), or the RFC 8288 `Link: <...>; rel="next"` header (until there is none);
always at most `max_pages`. One page is in memory at a time, cut off at MAX_PAGE_BYTES of
decoded body. Redirects are followed by hand so that the secret header goes only to the
source's own origin (a redirect or `next` link to another host does not get it).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import httpx

from recordbank import __version__
from recordbank.ingest.http_sources_model import Source

MAX_PAGE_BYTES = 50 * 1024**2
MAX_REDIRECTS = 5


class FetchError(Exception):
    """The run cannot complete; the message (without the secret) becomes last_error."""


class Stopped(Exception):
    """The process is shutting down: the run ends without an outcome and is due again."""


def redact(text: str, secret: str | None) -> str:
    """The secret, and its token part ("Bearer <token>"), never reach a stored error."""
    if secret:
        for part in sorted({secret, *(p for p in secret.split() if len(p) >= 4)},
                           key=len, reverse=True):
            text = text.replace(part, "***")
    return text[:2000]


def _same_origin(base: httpx.URL, url: httpx.URL) -> bool:
    """Where the secret may go: the source's own host and port, or the same host moving from
    http to https on the default ports."""
    if url.host != base.host:
        return False
    if url.scheme == base.scheme:
        return url.port == base.port
    return (base.scheme, url.scheme) == ("http", "https") and base.port is url.port is None


class Fetch:
    """The pages of one run, as lists of records; counts pages and renews the lease."""

    def __init__(self, client: httpx.Client, source: Source, *, on_page: Callable[[], None],
                 stop: threading.Event | None) -> None:
        self.client, self.source = client, source
        self.origin = httpx.URL(source.url)
        self.on_page, self.stop = on_page, stop
        self.pages = 0
        self.truncated = False

    def _headers(self, url: httpx.URL) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"recordbank/{__version__}",
                   **self.source.headers}
        if self.source.secret_header and self.source.secret and _same_origin(self.origin, url):
            headers[self.source.secret_header] = self.source.secret
        return headers

    def get(self, url: str, params: dict[str, Any]) -> tuple[Any, httpx.Response, bytes]:
        """One page as parsed JSON, redirects followed by hand (the secret stays home)."""
        target = httpx.URL(url).copy_merge_params(params)
        for _ in range(MAX_REDIRECTS + 1):
            if target.scheme not in ("http", "https"):
                raise FetchError(f"page {self.pages + 1}: not an http(s) URL: {target}")
            request = self.client.build_request("GET", target, headers=self._headers(target))
            response = self.client.send(request, stream=True)
            try:
                if response.has_redirect_location:
                    try:
                        target = response.url.join(response.headers["Location"])
                    except httpx.InvalidURL as exc:
                        raise FetchError(f"page {self.pages + 1}: a redirect to a bad URL "
                                         f"({exc})") from exc
                    continue
                if not response.is_success:
                    raise FetchError(f"page {self.pages + 1}: HTTP {response.status_code} "
                                     f"{response.reason_phrase} from {response.url}")
                body = self._read(response)
            finally:
                response.close()
            try:
                page = json.loads(body, parse_constant=_no_constant)
            except ValueError as exc:
                raise FetchError(f"page {self.pages + 1} ({response.url}) is not JSON: "
                                 f"{exc}") from exc
            return page, response, hashlib.sha256(body).digest()
        raise FetchError(f"page {self.pages + 1}: more than {MAX_REDIRECTS} redirects")

    def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PAGE_BYTES:
            raise FetchError(f"page {self.pages + 1} is {int(declared):,} bytes; at most "
                             f"{MAX_PAGE_BYTES:,} per page")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():  # decoded: a gzip bomb hits the cap too
            size += len(chunk)
            if size > MAX_PAGE_BYTES:
                raise FetchError(f"page {self.pages + 1} is larger than {MAX_PAGE_BYTES:,} "
                                 "bytes (the most read per page)")
            chunks.append(chunk)
        return b"".join(chunks)

    def records(self) -> Iterator[dict[str, Any]]:
        p = self.source.pagination
        kind, url = p["type"], self.source.url
        params: dict[str, Any] = {p["page_param"]: p["start"]} if kind == "page" else {}
        previous: bytes | None = None
        while True:
            if self.stop is not None and self.stop.is_set():
                raise Stopped()
            page, response, digest = self.get(url, params)
            self.pages += 1
            self.on_page()
            found = records_of(page, self.source.records_path, self.pages)
            yield from found
            if kind == "none":
                return
            if digest == previous and found:
                raise FetchError(f"page {self.pages} is the same as page {self.pages - 1}: "
                                 "does the server read the pagination parameter?")
            previous = digest
            if kind == "page":
                if not found:
                    return
                params = {p["page_param"]: p["start"] + self.pages}
            elif kind == "cursor":
                cursor = lookup(page, p["cursor_path"])
                if cursor is None or cursor == "":
                    return
                if isinstance(cursor, (dict, list, bool)):
                    raise FetchError(f"page {self.pages}: the cursor at {p['cursor_path']!r} "
                                     f"is not a string or number")
                params = {p["cursor_param"]: str(cursor)}
            else:  # link
                nxt = response.links.get("next", {}).get("url")
                if not nxt:
                    return
                url, params = urljoin(str(response.url), nxt), {}
            if self.pages >= p["max_pages"]:
                self.truncated = True
                return


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def lookup(page: Any, path: str) -> Any:
    """The value at a dotted path (list items by index), or None when it is not there."""
    value = page
    for key in path.split(".") if path else ():
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def records_of(page: Any, path: str, number: int) -> list[dict[str, Any]]:
    """The records of a page: a list of objects at `path` (null there: no records)."""
    value = page
    for key in path.split(".") if path else ():
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise FetchError(f"page {number}: the answer has no {path!r} (no key {key!r})")
    if value is None:
        return []
    if not isinstance(value, list):
        where = f"{path!r}" if path else "the answer"
        raise FetchError(f"page {number}: {where} is a JSON {type(value).__name__}, not a "
                         "list of records (set records_path)")
    for i, record in enumerate(value, 1):
        if not isinstance(record, dict):
            raise FetchError(f"page {number}: record {i} is not a JSON object")
    return value
