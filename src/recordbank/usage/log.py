"""The usage log: one row per API request, written off the request path in batches.

A synchronous INSERT per request would put a database round trip (and, on SQLite, the single
writer lock) on every request. Instead ``record`` appends to an in-memory queue and a background
thread writes batches with one multi-row INSERT. If the database is down the entries stay queued
and are retried with backoff; only past ``max_buffer`` entries are the oldest dropped (logged).
"""

from __future__ import annotations

import atexit
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, insert

from recordbank.accounts.keys import KEY_PREFIX
from recordbank.usage.models import UsageRecord

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
MAX_PARAMS_BYTES = 4096
_MAX_STRING = 256
_MAX_ITEMS = 50
_MAX_DEPTH = 4
_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "authorization", "auth", "password", "passwd", "secret",
    "bearer", "cookie", "credential", "credentials", "signature", "session",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_KEY_IN_TEXT = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9]+")
_COLUMN_CAPS = {"request_id": 64, "method": 8, "path": 300, "error_code": 64, "client": 64}


@dataclass(slots=True)
class UsageEntry:
    request_id: str
    method: str
    path: str
    status: int
    key_id: int | None = None
    user_id: int | None = None
    params: Mapping[str, Any] | None = None
    error_code: str | None = None
    rows_returned: int = 0
    credits_charged: int = 0
    duration_ms: float = 0.0
    client: str | None = None
    created_at: datetime | None = field(default=None)  # None: when record() is called


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """api_key, X-Api-Key, apiKey, access_token, Authorization, key … but not 'keyword'."""
    words = [w for w in _NON_WORD.split(_CAMEL.sub("_", name).lower()) if w]
    joined = "".join(words)
    return any(w in _SECRET_WORDS for w in words) or joined in _SECRET_WORDS \
        or joined.endswith(("apikey", "token", "secret", "password"))


def sanitize_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """JSON-safe copy with secret values redacted and the size capped at MAX_PARAMS_BYTES."""
    if params is None:
        return None
    size = [0]  # an upper bound of the JSON length, so json.dumps runs only on big params
    if not isinstance(params, Mapping):
        return {"_value": _clean(params, 0, size)}
    cleaned = _clean(params, 0, size)
    if size[0] > MAX_PARAMS_BYTES:
        exact = len(json.dumps(cleaned, ensure_ascii=False))
        if exact > MAX_PARAMS_BYTES:
            return {"_truncated": True, "_bytes": exact,
                    "_keys": [_short(str(k)) for k in list(params)[:_MAX_ITEMS]
                              if not is_secret_name(str(k))][:10]}
    assert isinstance(cleaned, dict)
    return cleaned


def _short(text: str) -> str:
    if KEY_PREFIX in text:
        text = _KEY_IN_TEXT.sub(KEY_PREFIX + REDACTED, text)
    return text if len(text) <= _MAX_STRING else text[:_MAX_STRING] + "…"


def _text(text: str, size: list[int]) -> str:
    text = _short(text)
    if text.isprintable():  # only quotes and backslashes get escaped
        size[0] += len(text) + 4 + text.count('"') + text.count("\\")
    else:  # control characters become \uXXXX
        size[0] += 6 * len(text) + 4
    return text


def _clean(value: Any, depth: int, size: list[int]) -> Any:
    kind = type(value)
    if kind is str:
        return _text(value, size)
    if value is None or kind is bool:
        size[0] += 7
        return value
    if kind is int:
        size[0] += 24 if -10**20 < value < 10**20 else len(str(value)) + 2
        return value
    if isinstance(value, Mapping):
        size[0] += 4  # braces and the separator after them
        if depth >= _MAX_DEPTH:
            return _text("{…}", size)
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= _MAX_ITEMS:
                out["_more_keys"] = len(value) - _MAX_ITEMS
                size[0] += 40
                break
            name = _text(str(k), size)
            size[0] += 2  # ": "
            out[name] = _text(REDACTED, size) if is_secret_name(str(k)) else \
                _clean(v, depth + 1, size)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        size[0] += 4
        if depth >= _MAX_DEPTH:
            return _text("[…]", size)
        items = list(value)
        cleaned = [_clean(v, depth + 1, size) for v in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            cleaned.append(_text(f"… {len(items) - _MAX_ITEMS} more", size))
        return cleaned
    if isinstance(value, float):
        if value == value and abs(value) != float("inf"):
            size[0] += 28
            return value
        return _text(str(value), size)
    if isinstance(value, bytes | bytearray):
        return _text(f"<{len(value)} bytes>", size)
    if isinstance(value, bool | int):  # subclasses such as IntEnum
        return _clean(int(value), depth, size)
    return _text(str(value), size)  # Decimal, datetime, UUID, …


def _row(entry: UsageEntry) -> dict[str, Any]:
    created = entry.created_at or datetime.now(UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    row: dict[str, Any] = {
        "created_at": created.astimezone(UTC),
        "request_id": entry.request_id,
        "key_id": entry.key_id,
        "user_id": entry.user_id,
        "method": entry.method.upper(),
        "path": entry.path,
        "params": sanitize_params(entry.params),
        "status": int(entry.status),
        "error_code": entry.error_code,
        "rows_returned": max(0, int(entry.rows_returned)),
        "credits_charged": int(entry.credits_charged),
        "duration_ms": float(entry.duration_ms),
        "client": entry.client,
    }
    for name, cap in _COLUMN_CAPS.items():
        value = row[name]
        if isinstance(value, str) and len(value) > cap:
            row[name] = value[:cap]
    return row


class UsageLog:
    """Queue + one writer thread. ``flush`` waits for what was recorded before it was called."""

    def __init__(self, engine: Engine, *, batch_size: int = 500, interval: float = 0.2,
                 max_buffer: int = 100_000, retry_max_seconds: float = 10.0) -> None:
        if batch_size < 1 or max_buffer < batch_size or interval <= 0:
            raise ValueError("need batch_size >= 1, max_buffer >= batch_size, interval > 0")
        self._engine = engine
        self._batch_size = batch_size
        self._interval = interval
        self._max_buffer = max_buffer
        self._retry_max = retry_max_seconds
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, dict[str, Any]]] = deque()
        self._inflight_first: int | None = None  # seq of the oldest entry being written
        self._seq = 0
        self._flush_target = 0
        self._retry_at = 0.0
        self._backoff = 0.0
        self._closing = False
        self._abandon = False
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="usage-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def record(self, entry: UsageEntry) -> None:
        """Queue one entry; never waits for the database."""
        row = _row(entry)
        with self._cond:
            if self._closed:
                log.warning("usage log closed; writing request %s synchronously",
                            entry.request_id)
                self._write([row])
                return
            self._seq += 1
            self._queue.append((self._seq, row))
            if len(self._queue) > self._max_buffer:
                self._drop_oldest()
            if len(self._queue) >= self._batch_size:
                self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (0 if self._inflight_first is None else 1)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every entry recorded before this call is written (or dropped).
        Returns False if ``timeout`` seconds passed first (e.g. the database is down)."""
        with self._cond:
            target = self._seq
            if self._closed:
                return self._oldest_pending() > target
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._oldest_pending() > target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write everything still queued (waiting at most ``timeout`` s), then stop the thread."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            if self._thread.is_alive():
                self._abandon = True
                self._cond.notify_all()
                lost = len(self._queue)
                log.error("usage log: database unavailable at shutdown, %d entries not written",
                          lost)
            self._closed = True
        atexit.unregister(self.close)

    # -- writer thread -------------------------------------------------------------------------

    def _oldest_pending(self) -> int:
        if self._inflight_first is not None:
            return self._inflight_first
        return self._queue[0][0] if self._queue else self._seq + 1

    def _drop_oldest(self) -> None:
        excess = len(self._queue) - self._max_buffer
        for _ in range(excess):
            self._queue.popleft()
        if self.dropped == 0 or (self.dropped + excess) // 10_000 > self.dropped // 10_000:
            log.warning("usage log buffer full (%d entries, database unreachable?): dropped "
                        "%d oldest entries so far", self._max_buffer, self.dropped + excess)
        self.dropped += excess
        self._cond.notify_all()

    def _should_write(self, now: float) -> bool:
        if not self._queue or now < self._retry_at:
            return False
        return (self._closing or len(self._queue) >= self._batch_size
                or self._flush_target >= self._queue[0][0])

    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self._interval
                while not self._abandon:
                    now = time.monotonic()
                    if self._should_write(now):
                        break
                    if self._closing and not self._queue:
                        return
                    if now >= deadline and self._queue and now >= self._retry_at:
                        break
                    wake = max(deadline, self._retry_at) if self._queue else deadline
                    self._cond.wait(max(0.005, wake - now))
                    if not self._queue:
                        deadline = time.monotonic() + self._interval
                if self._abandon:
                    return
                batch = [self._queue.popleft() for _ in range(min(self._batch_size,
                                                                  len(self._queue)))]
                self._inflight_first = batch[0][0]
            ok = self._write([row for _, row in batch])
            with self._cond:
                self._inflight_first = None
                if ok:
                    self.written += len(batch)
                    self._backoff = 0.0
                    self._retry_at = 0.0
                else:
                    self.failures += 1
                    self._queue.extendleft(reversed(batch))
                    if len(self._queue) > self._max_buffer:
                        self._drop_oldest()
                    self._backoff = min(self._retry_max, max(0.1, self._backoff * 2))
                    self._retry_at = time.monotonic() + self._backoff
                self._cond.notify_all()

    def _write(self, rows: list[dict[str, Any]]) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(UsageRecord.__table__), rows)  # type: ignore[arg-type]
            return True
        except Exception as exc:  # noqa: BLE001 - any DB failure: keep the rows and retry
            if self.failures == 0 or self.failures % 50 == 0:
                log.warning("usage log: writing %d rows failed, will retry: %s", len(rows), exc)
            return False
