"""Usage log on SQLite and PostgreSQL: batching, flush, concurrency, secrets, outages, reports."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, func, select

from recordbank.accounts.keys import generate_key
from recordbank.config import Settings
from recordbank.db.session import get_engine
from recordbank.usage.log import (
    MAX_PARAMS_BYTES,
    REDACTED,
    UsageEntry,
    UsageLog,
    is_secret_name,
    sanitize_params,
)
from recordbank.usage.models import UsageRecord
from recordbank.usage.report import history, totals

T = UsageRecord.__table__


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(Settings(database_url=database_url).resolved_database_url())


def entry(i: int, **kw: Any) -> UsageEntry:
    base: dict[str, Any] = dict(request_id=f"req-{i}", method="GET", path="/v1/records",
                                status=200, key_id=1, user_id=1)
    base.update(kw)
    return UsageEntry(**base)


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(T)).scalar_one())


def all_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(T).order_by(T.c.id)).mappings()]


def wait_until(predicate: Any, what: str, limit: float = 60.0) -> None:
    """Bounded wait for the writer thread (a hang fails the test instead of blocking it)."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_rows_written_with_all_fields(engine: Engine) -> None:
    log = UsageLog(engine)
    when = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    log.record(UsageEntry(request_id="r-1", method="post", path="/v1/records/search",
                          status=402, key_id=7, user_id=3, params={"country": "DE", "limit": 5},
                          error_code="INSUFFICIENT_CREDITS", rows_returned=0, credits_charged=0,
                          duration_ms=12.5, client="203.0.113.9", created_at=when))
    log.record(entry(2, rows_returned=50, credits_charged=2, params=None, key_id=None,
                     user_id=None))
    assert log.flush()
    rows = all_rows(engine)
    assert len(rows) == 2
    first = rows[0]
    assert {k: first[k] for k in ("request_id", "method", "path", "status", "key_id", "user_id",
                                  "params", "error_code", "rows_returned", "credits_charged",
                                  "duration_ms", "client")} == {
        "request_id": "r-1", "method": "POST", "path": "/v1/records/search", "status": 402,
        "key_id": 7, "user_id": 3, "params": {"country": "DE", "limit": 5},
        "error_code": "INSUFFICIENT_CREDITS", "rows_returned": 0, "credits_charged": 0,
        "duration_ms": 12.5, "client": "203.0.113.9"}
    stored = first["created_at"]
    assert (stored if stored.tzinfo else stored.replace(tzinfo=UTC)) == when
    assert rows[1]["params"] is None and rows[1]["key_id"] is None
    assert rows[1]["created_at"] is not None
    log.close()


def test_batches_by_size_and_flush_writes_the_rest(engine: Engine) -> None:
    inserts: list[int] = []

    def on_execute(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                   executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USAGE_LOG"):
            inserts.append(1)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        # the interval is far longer than the test: only size and flush() trigger writes
        log = UsageLog(engine, batch_size=50, interval=600)
        for i in range(120):
            log.record(entry(i))
        wait_until(lambda: log.written == 100, "two full batches")
        assert count(engine) == 100 and log.pending() == 20
        assert len(inserts) == 2  # one INSERT statement per batch of 50
        assert log.flush()
        assert count(engine) == 120 and log.pending() == 0 and len(inserts) == 3
        log.close()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def test_flush_waits_for_everything_recorded_before_it(engine: Engine) -> None:
    log = UsageLog(engine, batch_size=500, interval=600)
    for i in range(7):
        log.record(entry(i))
    assert count(engine) == 0  # neither a full batch nor the interval yet
    assert log.flush()
    assert count(engine) == 7
    assert log.flush(timeout=5)  # nothing new: returns at once
    log.record(entry(7))
    log.close()  # close writes what is left
    assert count(engine) == 8
    log.record(entry(8))  # after close: written synchronously, not lost
    assert count(engine) == 9
    assert log.flush()
    log.close()  # twice is harmless


def test_interval_writes_without_flush(engine: Engine) -> None:
    log = UsageLog(engine, batch_size=500, interval=0.05)
    for i in range(3):
        log.record(entry(i))
    wait_until(lambda: count(engine) == 3, "the periodic write")
    log.close()


def test_concurrent_recording_loses_nothing(engine: Engine) -> None:
    log = UsageLog(engine, batch_size=100, interval=0.02)
    threads_n, per_thread = 8, 400

    def work(t: int) -> None:
        for i in range(per_thread):
            log.record(entry(i, request_id=f"t{t}-{i}", user_id=t))
            if i % 97 == 0:
                assert log.flush(timeout=120)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert log.flush()
    rows = all_rows(engine)
    ids = [r["request_id"] for r in rows]
    assert len(ids) == threads_n * per_thread
    assert set(ids) == {f"t{t}-{i}" for t in range(threads_n) for i in range(per_thread)}
    assert Counter(r["user_id"] for r in rows) == {t: per_thread for t in range(threads_n)}
    # per thread, rows went in in the order they were recorded
    for t in range(threads_n):
        mine = [int(r["request_id"].split("-")[1]) for r in rows if r["user_id"] == t]
        assert mine == sorted(mine)
    assert log.dropped == 0
    log.close()


def test_secrets_stripped_and_size_capped(engine: Engine) -> None:
    key = generate_key()
    params = {
        "api_key": key, "key": "k", "token": "t0k", "Authorization": f"Bearer {key}",
        "X-Api-Key": key, "apiKey": key, "access_token": "acc3ss", "password": "p4ss",
        "nested": {"client_secret": "s", "q": "ok", "deep": [{"sessionToken": "x"}]},
        "q": f"who is {key} anyway", "keyword": "stays", "limit": 10, "ratio": 0.5,
        "price": Decimal("1.50"), "when": datetime(2024, 1, 2, tzinfo=UTC), "raw": b"\x00\x01",
        "tags": {"a"}, "nan": float("nan"), "flag": True, "none": None,
        key: "a key used as a parameter name",
    }
    log = UsageLog(engine)
    log.record(entry(1, params=params))
    log.record(entry(2, params={"blob": "x" * 100_000}))
    log.record(entry(3, params={f"p{i}": "y" * 100 for i in range(500)}))
    log.record(entry(4, path="/v1/" + "p" * 1000, method="PROPFINDX", request_id="r" * 200,
                     error_code="E" * 100, client="c" * 100, params={"list": list(range(1000))}))
    assert log.flush()
    rows = all_rows(engine)
    assert len(rows) == 4
    text = json.dumps([r["params"] for r in rows])
    body = key[len("rb_live_"):]
    for secret in (body, "t0k", "Bearer", "p4ss", "acc3ss", '"s"', '"x"', '"k"'):
        assert secret not in text, secret
    stored = rows[0]["params"]
    for name in ("api_key", "key", "token", "Authorization", "X-Api-Key", "apiKey",
                 "access_token", "password"):
        assert stored[name] == REDACTED
    assert stored["nested"]["client_secret"] == REDACTED
    assert stored["nested"]["q"] == "ok"
    assert stored["nested"]["deep"] == [{"sessionToken": REDACTED}]
    assert stored["q"] == f"who is rb_live_{REDACTED} anyway"
    assert (stored["keyword"], stored["limit"], stored["ratio"], stored["flag"]) == \
        ("stays", 10, 0.5, True)
    assert stored["price"] == "1.50" and stored["raw"] == "<2 bytes>" and stored["nan"] == "nan"
    assert stored["none"] is None and stored["tags"] == ["a"]
    for row in rows:
        assert len(json.dumps(row["params"])) <= MAX_PARAMS_BYTES
    assert rows[1]["params"]["blob"].endswith("…") and len(rows[1]["params"]["blob"]) < 300
    assert rows[2]["params"]["_truncated"] is True
    assert len(rows[3]["path"]) == 300 and rows[3]["method"] == "PROPFIND"
    assert len(rows[3]["request_id"]) == 64 and len(rows[3]["client"]) == 64
    assert len(rows[3]["params"]["list"]) == 51  # 50 items and a "… 950 more" marker
    log.close()


@pytest.mark.parametrize("name, secret", [
    ("api_key", True), ("API-KEY", True), ("apikey", True), ("xApiKey", True), ("key", True),
    ("token", True), ("refresh_token", True), ("authorization", True), ("Cookie", True),
    ("keyword", False), ("monkey", False), ("q", False), ("limit", False), ("country", False),
    ("cursor", False), ("fields", False),
])
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=400)
    | st.binary(max_size=20) | st.decimals(allow_nan=False),
    lambda inner: st.lists(inner, max_size=55)
    | st.dictionaries(st.text(max_size=30) | st.sampled_from(["api_key", "token", "q"]),
                      inner, max_size=55),
    max_leaves=40)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=40) | st.sampled_from(["Authorization", "limit"]),
                       JSONISH, max_size=12))
def test_sanitized_params_are_small_json_without_secret_values(params: dict[str, Any]) -> None:
    cleaned = sanitize_params(params)
    text = json.dumps(cleaned, ensure_ascii=False, allow_nan=False)
    assert len(text) <= MAX_PARAMS_BYTES

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                assert not is_secret_name(k) or v == REDACTED
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
    walk(cleaned)


def test_sanitize_params_odd_input() -> None:
    assert sanitize_params(None) is None
    assert sanitize_params({}) == {}
    assert sanitize_params([1, 2]) == {"_value": [1, 2]}  # type: ignore[arg-type]
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    assert sanitize_params(deep) == {"a": {"b": {"c": {"d": "{…}"}}}}
    assert sanitize_params({1: "int key"}) == {"1": "int key"}  # type: ignore[dict-item]


def test_database_down_keeps_entries_and_retries(tmp_path: Path) -> None:
    """A SQLite file in a folder that does not exist yet: every write fails until it does."""
    folder = tmp_path / "later"
    url = f"sqlite:///{folder / 'usage.db'}"
    down = create_engine(url)
    log = UsageLog(down, batch_size=10, interval=0.01, retry_max_seconds=0.1)
    for i in range(30):
        log.record(entry(i))
    assert not log.flush(timeout=0.5)
    assert log.failures >= 1 and log.pending() == 30 and log.written == 0
    folder.mkdir()
    up = get_engine(url)  # creates the file and the tables
    assert log.flush(timeout=60)
    assert [r["request_id"] for r in all_rows(up)] == [f"req-{i}" for i in range(30)]
    log.close()
    down.dispose()
    up.dispose()


def test_bounded_buffer_drops_oldest_while_down(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    url = f"sqlite:///{folder / 'usage.db'}"
    down = create_engine(url)
    log = UsageLog(down, batch_size=10, interval=0.01, max_buffer=100, retry_max_seconds=0.1)
    for i in range(250):
        log.record(entry(i))
    wait_until(lambda: log.failures >= 1 and log.pending() == 100, "a failed write")
    assert log.dropped == 150
    folder.mkdir()
    up = get_engine(url)
    assert log.flush(timeout=60)
    assert [r["request_id"] for r in all_rows(up)] == [f"req-{i}" for i in range(150, 250)]
    log.close()
    down.dispose()
    up.dispose()


def test_bad_arguments() -> None:
    eng = create_engine("sqlite://")
    for kw in ({"batch_size": 0}, {"max_buffer": 10, "batch_size": 20}, {"interval": 0}):
        with pytest.raises(ValueError):
            UsageLog(eng, **kw)


# -- reports -----------------------------------------------------------------------------------

DAY0 = datetime(2024, 3, 10, tzinfo=UTC)
ENDPOINTS = ["/v1/records", "/v1/records/search", "/v1/credits"]


def synthetic(n: int) -> list[UsageEntry]:
    """Two users over three UTC days; some requests late in the UTC day, some errors."""
    out = []
    for i in range(n):
        at = DAY0 + timedelta(minutes=37 * i)  # 37 min steps: covers late evening hours too
        status = 200 if i % 5 else (402 if i % 2 else 429)
        out.append(UsageEntry(
            request_id=f"h-{i}", method="GET", path=ENDPOINTS[i % 3], status=status,
            key_id=10 + i % 2, user_id=1 if i % 4 else 2, rows_returned=0 if status != 200
            else i % 11, credits_charged=0 if status != 200 else 1 + i % 3, created_at=at,
            error_code=None if status == 200 else "E"))
    return out


def expected_totals(entries: list[UsageEntry], user_id: int, since: datetime | None = None,
                    until: datetime | None = None) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        assert e.created_at is not None
        if e.user_id != user_id or (since and e.created_at < since) or \
                (until and e.created_at >= until):
            continue
        day = e.created_at.astimezone(UTC).date().isoformat()
        g = groups.setdefault((day, e.path), {"date": day, "endpoint": e.path, "requests": 0,
                                              "rows": 0, "credits": 0, "errors": 0})
        g["requests"] += 1
        g["rows"] += e.rows_returned
        g["credits"] += e.credits_charged
        g["errors"] += e.status >= 400
    return [groups[k] for k in sorted(groups)]


@pytest.fixture
def report_engine(database_url: str) -> Engine:
    """On PostgreSQL the session time zone is set far from UTC: days must still be UTC days."""
    url = Settings(database_url=database_url).resolved_database_url()
    if url.startswith("postgresql"):
        url = url.replace("options=-csearch_path",
                          "options=-ctimezone%3DAsia/Tokyo%20-csearch_path")
        engine = get_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar_one() == "Asia/Tokyo"
        return engine
    return get_engine(url)


def test_history_paging_and_filters(report_engine: Engine) -> None:
    entries = synthetic(120)
    log = UsageLog(report_engine, batch_size=32)
    for e in entries:
        log.record(e)
    assert log.flush()
    log.close()
    mine = sorted((e for e in entries if e.user_id == 1), key=lambda e: e.created_at or DAY0,
                  reverse=True)
    seen: list[dict[str, Any]] = []
    offset = 0
    while True:
        page, total = history(report_engine, 1, limit=7, offset=offset)
        assert total == len(mine)
        if not page:
            break
        seen.extend(page)
        offset += 7
    assert [r["request_id"] for r in seen] == [e.request_id for e in mine]
    assert seen[0]["created_at"] == (mine[0].created_at or DAY0).isoformat()
    assert {r["path"] for r in seen} == set(ENDPOINTS)
    # since inclusive, until exclusive; an aware bound in another zone is converted
    since = DAY0 + timedelta(hours=20)
    until = (DAY0 + timedelta(days=1, hours=9)).astimezone(timezone(timedelta(hours=2)))
    want = [e.request_id for e in mine if since <= (e.created_at or DAY0) < until
            and e.path == "/v1/credits"]
    page, total = history(report_engine, 1, limit=1000, offset=0, since=since, until=until,
                          endpoint="/v1/credits")
    assert total == len(want) > 0 and [r["request_id"] for r in page] == want
    # naive bounds are UTC
    page, total = history(report_engine, 1, limit=5, offset=0, since=since.replace(tzinfo=None))
    assert total == sum(1 for e in mine if (e.created_at or DAY0) >= since)
    assert history(report_engine, 999, limit=5, offset=0) == ([], 0)
    assert history(report_engine, 1, limit=5, offset=10_000)[0] == []
    for limit, offset in ((0, 0), (10, -1), (10**6, 0)):
        with pytest.raises(ValueError):
            history(report_engine, 1, limit=limit, offset=offset)


def test_totals_per_utc_day_and_endpoint(report_engine: Engine) -> None:
    entries = synthetic(150)
    log = UsageLog(report_engine, batch_size=40)
    for e in entries:
        log.record(e)
    assert log.flush()
    log.close()
    for user in (1, 2):
        got = totals(report_engine, user)
        assert got == expected_totals(entries, user)
        assert len({g["date"] for g in got}) == 4  # 150 x 37 min spans four UTC days
    since, until = DAY0 + timedelta(hours=23), DAY0 + timedelta(days=2, hours=1)
    assert totals(report_engine, 1, since=since, until=until) == \
        expected_totals(entries, 1, since, until)
    assert totals(report_engine, 999) == []
