"""Small real HTTP servers for tests, each on 127.0.0.1 in a daemon thread.

PagesServer: paged JSON records, for the scheduled HTTP source tests. Paths (each checks the
secret header when one is set: 401 without it):
  /none                 {"data": {"items": [all records]}}
  /page?page=N          {"data": {"items": [page N]}}, pages from 1, empty past the end
  /cursor?cursor=C      {"items": [...], "meta": {"next_cursor": "…" or null}}
  /link?offset=O        [records...] with `Link: </link?offset=…>; rel="next"` until the end
  /fail/500, /badjson, /same (the same full page whatever the page), /big (a large page)
  /redirect?to=URL      302 to URL
  /open                 like /none, without the secret check

Receiver: records every POST (webhook deliveries) and answers with queued status codes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

SECRET_HEADER = "Authorization"
SECRET = "Bearer s3cr3t-T0ken-value"


def person(i: int) -> dict[str, Any]:
    return {"id": i, "email": f"person{i}@example.com", "name": f"Person {i}",
            "phone": f"+1415555{i:04d}",
            "address": {"city": "Springfield", "zip": f"{10000 + i}"}, "tags": ["a", "b"]}


class LocalServer(ThreadingHTTPServer):
    """A server on 127.0.0.1 (port 0: any free one) served from a daemon thread."""

    daemon_threads = True

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(5)
        self.server_close()


S = TypeVar("S", bound=LocalServer)


@contextmanager
def running(server: S) -> Iterator[S]:
    server.start()
    try:
        yield server
    finally:
        server.close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:
        """Print nothing: http.server writes a line per request to stderr by default."""


class PagesServer(LocalServer):
    def __init__(self, port: int, records: list[dict[str, Any]], *, page_size: int = 10,
                 secret: str | None = SECRET) -> None:
        super().__init__(port, _PagesHandler)
        self.records, self.page_size, self.secret = records, page_size, secret
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path with query, headers)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for path, _ in self.seen if path.startswith(prefix))


class _PagesHandler(_Quiet):
    server: PagesServer

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        srv = self.server
        with srv.lock:
            srv.seen.append((self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path != "/open" and srv.secret and self.headers.get(SECRET_HEADER) != srv.secret:
            self._send(401, {"error": "unauthorized"})
            return
        records, size = srv.records, srv.page_size
        if parts.path in ("/none", "/open"):
            self._send(200, {"data": {"items": records}})
        elif parts.path == "/page":
            n = int(query.get("page", "1"))
            self._send(200, {"data": {"items": records[(n - 1) * size: n * size]}})
        elif parts.path == "/cursor":
            start = int(query.get("cursor", "0"))
            end = start + size
            self._send(200, {"items": records[start:end],
                             "meta": {"next_cursor": str(end) if end < len(records) else None}})
        elif parts.path == "/link":
            start = int(query.get("offset", "0"))
            end = start + size
            links = {"Link": f'</link?offset={end}>; rel="next", </link?offset=0>; rel="first"'}
            self._send(200, records[start:end], links if end < len(records) else None)
        elif parts.path == "/fail/500":
            self._send(500, {"error": f"boom, you sent {self.headers.get(SECRET_HEADER)}"})
        elif parts.path == "/badjson":
            self._send(200, b'{"data": {"items": [{"email": "a@b.co"},')
        elif parts.path == "/same":
            self._send(200, {"data": {"items": records}})
        elif parts.path == "/big":
            self._send(200, {"data": {"items": [person(i) for i in range(5000)]}})
        else:
            self._send(404, {"error": "not found"})


def serving(port: int, records: list[dict[str, Any]],
            **kw: Any) -> AbstractContextManager[PagesServer]:
    """A PagesServer on `port` for the `with` block."""
    return running(PagesServer(port, records, **kw))


class Receiver(LocalServer):
    """Records every POST to `url`; answers with the queued status codes (`answers`), then 200."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port, _ReceiverHandler)
        self.got: list[dict[str, Any]] = []  # {"headers": …, "body": bytes}, in arrival order
        self.answers: list[int] = []
        self.url = f"http://127.0.0.1:{self.port}/hook"


class _ReceiverHandler(_Quiet):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        srv = self.server
        with srv.lock:
            srv.got.append({"headers": dict(self.headers), "body": body})
            status = srv.answers.pop(0) if srv.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def receiving(port: int = 0) -> AbstractContextManager[Receiver]:
    """A Receiver for the `with` block."""
    return running(Receiver(port))
