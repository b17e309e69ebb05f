"""Reading an export query's output from the engine as a stream of pieces.

chDB: its streaming API on a connection of our own, one whole-row block per piece, computed
ahead in a thread of its own. A ClickHouse server: clickhouse-connect's raw_stream over HTTP,
pieces cut anywhere (the caller counts rows).
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import re
import threading
from collections.abc import Generator
from typing import Any, TypeVar, cast

import chdb
from clickhouse_connect.driver.binding import bind_query
from clickhouse_connect.driver.exceptions import DatabaseError

from recordbank.store.client import Store

T = TypeVar("T")
TIMEOUT_EXCEEDED = 159


class EngineTimeLimit(Exception):
    """The engine stopped the export's query at its max_execution_time."""


def bind(store: Store, sql: str, parameters: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """Parameters as clickhouse-connect binds them for chDB. Called in the caller's thread:
    Store.client in the reading thread would open (and keep) a client per export."""
    query, bound = bind_query(sql, parameters, store.client.server_tz)
    return (query.decode() if isinstance(query, bytes) else query,
            {key.removeprefix("param_"): value for key, value in bound.items()})


def chdb_blocks(store: Store, query: str, params: dict[str, str],
                 engine_format: str) -> Generator[tuple[bytes, int], None, None]:
    """(bytes, rows): one engine block each, whole rows, with chDB's row count. On a connection
    of our own: an open stream holds its connection, and the thread's Store.client must stay
    usable (the ASGI thread pool runs other requests on this thread)."""
    conn = chdb.connect(os.path.realpath(store.path or ""))
    stream = None
    try:
        stream = conn.send_query(query, engine_format, params=params)
        while (chunk := stream.fetch()) is not None:
            yield chunk.bytes(), chunk.rows_read()
    except RuntimeError as exc:  # chDB's errors
        message = str(exc)
        code = re.search(r"Code: (\d+)", message)
        if code and int(code.group(1)) == TIMEOUT_EXCEEDED:
            raise EngineTimeLimit(message[code.start():]) from exc
        raise DatabaseError(message[code.start():] if code else message,
                            code=int(code.group(1)) if code else None) from exc
    finally:
        if stream is not None:
            stream.close()  # cancels the query when the consumer stops early
        conn.close()


def ahead(source: Generator[T, None, None], depth: int = 4) -> Generator[T, None, None]:
    """Run source in a thread of its own, up to depth items ahead. chDB computes a block only
    when asked for it, so without this the engine idles while the consumer encodes or sends;
    the source runs, and is closed, in that thread only."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                items.put(("item", item))
                if stop.is_set():
                    return
            items.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(("error", exc))
        finally:
            source.close()

    worker = threading.Thread(target=produce, name="export-ahead", daemon=True)
    worker.start()
    try:
        while (item := items.get())[0] == "item":
            yield item[1]
        if item[0] == "error":
            raise item[1]
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue; waits out the block being computed.
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.05)


def client_pieces(store: Store, sql: str, parameters: dict[str, Any], engine_format: str,
                   piece_bytes: int) -> Generator[tuple[bytes, None], None, None]:
    """(bytes, None): pieces cut anywhere, even inside a row; the caller counts rows."""
    stream = cast(io.IOBase, store.client.raw_stream(sql, parameters=parameters,
                                                     fmt=engine_format))
    try:
        while piece := stream.read(piece_bytes):
            yield piece, None
    finally:
        stream.close()
