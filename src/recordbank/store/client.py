"""One client for both engines: chDB in-process (``chdb:///dir``) or a ClickHouse server (http).

chDB allows one store path per process and one process per path, so an embedded Store is a
process-wide singleton; each thread gets its own connection (chDB's module-level query holds a
global lock). A thread's connection is closed when the thread ends: the API's worker threads
come and go, and their connections must not pile up.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client


class StoreBusy(RuntimeError):
    """Another process owns the embedded store."""


class _ThreadClient:
    """Held only by one thread's local storage: collected when that thread ends."""

    __slots__ = ("client", "__weakref__")

    def __init__(self, client: Client) -> None:
        self.client = client


class Store:
    def __init__(self, url: str, *, lazy: bool = False) -> None:
        self.url = url
        self.embedded = url.startswith("chdb://")
        self.path = urlparse(url).path if self.embedded else None
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        if not lazy:  # open now so a busy store fails at start-up
            self.client  # noqa: B018

    @property
    def client(self) -> Client:
        held: _ThreadClient | None = getattr(self._local, "held", None)
        if held is None:
            held = _ThreadClient(self._connect())
            self._local.held = held
            with self._lock:
                self._clients.append(held.client)
            weakref.finalize(held, self._release, held.client)
        return held.client

    @property
    def open_clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def _release(self, client: Client) -> None:
        """The owning thread ended (or the store closed): close its connection once."""
        with self._lock:
            try:
                self._clients.remove(client)
            except ValueError:  # close() got there first
                return
        with contextlib.suppress(Exception):  # closing is best effort
            client.close()

    def _connect(self) -> Client:
        try:
            if self.embedded:
                return clickhouse_connect.get_client(dsn=self.url)
            parsed = urlparse(self.url)
            return clickhouse_connect.get_client(
                host=parsed.hostname or "localhost",
                port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
                username=parsed.username or "default",
                password=parsed.password or "",
                database=(parsed.path or "/default").lstrip("/") or "default",
                secure=parsed.scheme == "https",
            )
        except Exception as exc:  # chDB raises plain RuntimeError/Exception here
            if self.embedded and "EmbeddedServer" in str(exc):
                raise StoreBusy(
                    f"the embedded store at {self.path} is in use by another process "
                    "(stop `recordbank serve` or run the command through it)"
                ) from exc
            raise

    # Thin helpers so callers never build SQL with values in it.
    def command(self, sql: str, parameters: dict[str, Any] | None = None,
                settings: dict[str, Any] | None = None) -> Any:
        return self.client.command(sql, parameters=parameters, settings=settings)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None,
             settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        result = self.client.query(sql, parameters=parameters, settings=settings)
        return [tuple(row) for row in result.result_rows]

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, parameters)
        return rows[0][0] if rows else None

    def insert(self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]],
               column_oriented: bool = False) -> None:
        self.client.insert(table, data, column_names=list(columns),
                           column_oriented=column_oriented)

    def insert_arrow(self, table: str, data: Any) -> None:
        self.client.insert_arrow(table, data)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                with contextlib.suppress(Exception):  # closing is best effort
                    client.close()
            self._clients.clear()
        self._local = threading.local()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(url: str) -> Store:
    """Process-wide Store per URL (chDB cannot open the same path twice in one process)."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = Store(url)
            _stores[url] = store
        return store


def close_all() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


def quote_ident(name: str) -> str:
    """Backquote an identifier we generated or checked; backquotes inside are escaped."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def sql_string(value: str) -> str:
    """A ClickHouse string literal for a constant we generate (column names, codes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
