"""Running a query against the store: page and count at once, under the query time limit.

The count runs on a small shared pool while the page runs on the caller's thread; each thread
has its own store client (Store.client is per thread), so the two do not wait on each other.
"""

from __future__ import annotations

import contextlib
import functools
import math
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from recordbank.config import Settings
from recordbank.query.compile import TABLE, CompiledQuery, compile_query, cursor_values
from recordbank.query.cursor import encode_cursor
from recordbank.query.model import KIND, InvalidQuery, QueryRequest, check_fields
from recordbank.store.client import Store, StoreBusy, quote_ident

_TIMEOUT_EXCEEDED = 159
_COUNT_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="recordbank-count")


class QueryTimeout(Exception):
    """The store stopped the query at Settings.query_time_limit_seconds."""

    code = "QUERY_TIMEOUT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreUnavailable(Exception):
    """The record store cannot be reached (or another process holds the embedded one)."""

    code = "STORE_UNAVAILABLE"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Page:
    rows: list[dict[str, Any]]  # JSON-ready (see to_json_value)
    total: int
    total_approximate: bool  # total is Settings.count_cap and more rows match
    next_cursor: str | None  # None on the last page
    query_ms: float  # wall time of the store work (page and count together)


def store_settings(settings: Settings) -> dict[str, Any]:
    return {"max_execution_time": settings.query_time_limit_seconds}


def run_sql(store: Store, sql: str, parameters: dict[str, Any],
            settings: Settings) -> list[tuple[Any, ...]]:
    """Store.rows under the query time limit, with its failures as QueryTimeout /
    StoreUnavailable (other errors pass through: they are bugs, not caller mistakes)."""
    try:
        return store.rows(sql, parameters, store_settings(settings))
    except DatabaseError as exc:
        if getattr(exc, "code", None) == _TIMEOUT_EXCEEDED or "TIMEOUT_EXCEEDED" in str(exc):
            limit = settings.query_time_limit_seconds
            raise QueryTimeout(f"the query ran longer than the {limit:g} s limit; "
                               "narrow the filters") from exc
        if isinstance(exc, OperationalError):
            raise StoreUnavailable("the record store cannot be reached") from exc
        raise
    except (StoreBusy, ConnectionError) as exc:
        raise StoreUnavailable("the record store cannot be reached") from exc


def run_query(store: Store, q: QueryRequest, settings: Settings,
              compiled: CompiledQuery | None = None) -> Page:
    """One page of q. Raises InvalidQuery before touching the store, then QueryTimeout or
    StoreUnavailable. `compiled`: q already compiled with these settings (a caller that
    compiles first to refuse bad input before charging need not compile twice)."""
    secret = settings.resolved_secret_key()
    cq = compiled or compile_query(q, secret=secret, max_offset=settings.max_offset,
                                   count_cap=settings.count_cap)
    started = time.perf_counter()
    count = _COUNT_POOL.submit(run_sql, store, cq.count_sql, cq.count_parameters, settings)
    try:
        raw = run_sql(store, cq.sql, cq.parameters, settings)
    except BaseException:
        count.cancel()
        with contextlib.suppress(Exception):  # the page error is the one to report
            count.result()
        raise
    matched = int(count.result()[0][0])
    query_ms = (time.perf_counter() - started) * 1000
    more = len(raw) > cq.limit
    raw = raw[: cq.limit]
    next_cursor = None
    if more:
        last = dict(zip(cq.columns, raw[-1], strict=True))
        next_cursor = encode_cursor(cursor_values(cq.sort, last), cq.fingerprint, secret)
    if cq.count_exact:
        total, approximate = matched, False
    else:
        total, approximate = min(matched, cq.count_cap), matched > cq.count_cap
    return Page(rows=_outputs(cq.columns, cq.fields, raw), total=total,
                total_approximate=approximate, next_cursor=next_cursor, query_ms=query_ms)


def get_record(store: Store, record_id: str, fields: list[str] | None,
               settings: Settings) -> dict[str, Any] | None:
    """One record by id (read through the by_id projection), or None."""
    try:
        if not isinstance(record_id, str) or len(record_id) > 45:
            raise ValueError
        uid = str(UUID(record_id))
    except ValueError:
        raise InvalidQuery("INVALID_QUERY", "record id must be a UUID") from None
    names = check_fields(fields)
    sql = (f"SELECT {', '.join(quote_ident(n) for n in names)} FROM {TABLE}"
           " WHERE id = {id:UUID} LIMIT 1")
    rows = run_sql(store, sql, {"id": uid}, settings)
    return _output(names, names, rows[0]) if rows else None


def _output(columns: list[str], fields: list[str], raw: tuple[Any, ...]) -> dict[str, Any]:
    return _outputs(columns, fields, [raw])[0]


def _outputs(columns: list[str], fields: list[str],
             raws: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; the converter is chosen once per column, not per value."""
    plan = [(name, columns.index(name), _CONVERT.get(KIND.get(name, ""), to_json_value))
            for name in fields]
    return [{name: raw[i] if conv is None else conv(raw[i]) for name, i, conv in plan}
            for raw in raws]


@functools.lru_cache(maxsize=4096)
def _float32(value: Any) -> Any:
    """A Float32 as the shortest decimal that reads back as the same Float32 (0.9, not
    0.8999999761581421); filters bind Float32 too, so the shown value matches itself."""
    if not isinstance(value, float) or not math.isfinite(value):
        return to_json_value(value)
    stored = struct.pack("<f", value)
    for digits in range(1, 10):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == stored:
            return short
    return value


@functools.lru_cache(maxsize=65_536)
def _date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def to_json_value(value: Any) -> Any:
    """A store value as JSON: UUID -> str, date -> ISO, datetime -> ISO UTC with Z,
    Map -> dict, bytes -> hex. Idempotent, so converting twice is harmless."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(to_json_value(k)): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


# None: the driver's value is already JSON (str, int).
_CONVERT: dict[str, Callable[[Any], Any] | None] = {
    "string": None, "uint": None, "float": _float32, "date": _date, "uuid": str,
    "datetime": to_json_value, "array": to_json_value,
}
