"""Read a user's ledger_seq from the event loop, without a worker thread.

GET /v1/credits answers from a cached summary when ledger_seq has not moved (billing/view.py).
Handing that one-row read to a worker thread costs more CPU than the read itself (the thread
switch, under the GIL, is most of a cached answer's cost), so it runs on the loop:
SQLite through its own read-only connection that never waits for a lock (a WAL read rarely
needs one), PostgreSQL through one async psycopg connection. Whatever goes wrong, `read`
returns None and the caller takes the threaded path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

import psycopg
from sqlalchemy import Engine

log = logging.getLogger(__name__)

_SQL_SQLITE = "SELECT ledger_seq FROM users WHERE id = ?"
_SQL_PG = "SELECT ledger_seq FROM users WHERE id = %s"


class SeqProbe:
    def __init__(self, engine: Engine) -> None:
        url = engine.url
        self.kind = url.get_backend_name()
        self._sqlite_path = url.database if self.kind == "sqlite" else None
        self._pg_conninfo = (url.set(drivername="postgresql").render_as_string(
            hide_password=False) if self.kind == "postgresql" else None)
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None  # psycopg.AsyncConnection, bound to the loop that opened it
        self._pg_loop: asyncio.AbstractEventLoop | None = None
        self._pg_lock: asyncio.Lock | None = None

    async def read(self, user_id: int) -> int | None:
        """The user's ledger_seq; None when it cannot be read cheaply (or no such user)."""
        try:
            if self._sqlite_path:
                return self._read_sqlite(user_id)
            if self._pg_conninfo:
                return await self._read_pg(user_id)
        except (sqlite3.Error, psycopg.Error, OSError) as exc:
            log.debug("ledger_seq probe failed (%s); using the threaded read", exc)
            await self.aclose()
        return None

    def _read_sqlite(self, user_id: int) -> int | None:
        if self._sqlite is None:
            uri = f"file:{self._sqlite_path}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=0)
            conn.execute("PRAGMA busy_timeout=0")  # never block the event loop on a lock
            self._sqlite = conn
        row = self._sqlite.execute(_SQL_SQLITE, (user_id,)).fetchone()
        return None if row is None else int(row[0])

    async def _read_pg(self, user_id: int) -> int | None:
        loop = asyncio.get_running_loop()
        if self._pg is None or self._pg_loop is not loop:
            self._pg, self._pg_loop, self._pg_lock = None, loop, asyncio.Lock()
            self._pg = await psycopg.AsyncConnection.connect(
                self._pg_conninfo or "", autocommit=True, connect_timeout=5)
        assert self._pg_lock is not None
        async with self._pg_lock:
            cur = await self._pg.execute(_SQL_PG, (user_id,), prepare=True)
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def aclose(self) -> None:
        if self._sqlite is not None:
            with contextlib.suppress(sqlite3.Error):
                self._sqlite.close()
            self._sqlite = None
        pg, self._pg = self._pg, None
        if pg is not None and self._pg_loop is asyncio.get_running_loop():
            with contextlib.suppress(psycopg.Error, OSError):
                await pg.close()
