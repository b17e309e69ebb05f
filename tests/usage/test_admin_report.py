"""Admin log queries and dashboard stats on SQLite and PostgreSQL, against Python's own answers."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from recordbank.accounts.users import create_user
from recordbank.billing import ledger
from recordbank.config import Settings
from recordbank.db.models import JOB_STATUSES
from recordbank.db.session import get_engine
from recordbank.ingest.jobs import claim_file, fail_job, finish_job
from recordbank.usage import admin_report, stats
from recordbank.usage.admin_report import LogFilter, safe_cell, status_range
from recordbank.usage.log import UsageEntry, UsageLog
from recordbank.usage.report import as_utc

T0 = datetime(2025, 6, 1, 22, 0, tzinfo=UTC)
PATHS = ["/v1/records", "/v1/records/{record_id}", "/v1/query", "/v1/recordsX",
         "/v1/a_b%c", "/v1/axb%c", "/v1/a_bzc"]
STATUSES = [200, 200, 201, 404, 402, 429, 500, 200, 302]


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(Settings(database_url=database_url).resolved_database_url())


def synthetic(n: int) -> list[UsageEntry]:
    """Three users, four keys, several paths and statuses; every third pair shares a time
    (ties in created_at must still page exactly)."""
    out = []
    for i in range(n):
        out.append(UsageEntry(
            request_id=f"r{i}", method="GET" if i % 4 else "POST", path=PATHS[i % len(PATHS)],
            status=STATUSES[i % len(STATUSES)], key_id=100 + i % 4, user_id=1 + i % 3,
            rows_returned=i % 13, credits_charged=i % 5, duration_ms=float((i * 37) % 101),
            params={"i": i}, created_at=T0 + timedelta(minutes=11 * (i // 2))))
    return out


def write(engine: Engine, entries: list[UsageEntry]) -> None:
    log = UsageLog(engine, batch_size=50)
    for e in entries:
        log.record(e)
    assert log.flush(timeout=30)
    log.close()


def newest_first(entries: list[UsageEntry]) -> list[str]:
    """Request ids in the order the admin log answers: created_at desc, then insert order desc."""
    order = sorted(range(len(entries)),
                   key=lambda i: (entries[i].created_at, i), reverse=True)
    return [entries[i].request_id for i in order]


def keep(e: UsageEntry, f: LogFilter) -> bool:
    assert e.created_at is not None
    if f.user_id is not None and e.user_id != f.user_id:
        return False
    if f.key_id is not None and e.key_id != f.key_id:
        return False
    if f.path is not None:
        if f.path.endswith("*"):
            if not e.path.startswith(f.path[:-1]):
                return False
        elif e.path != f.path:
            return False
    if f.status is not None:
        low, high = status_range(f.status)
        if not low <= e.status < high:
            return False
    if f.since is not None and e.created_at < as_utc(f.since):
        return False
    return not (f.until is not None and e.created_at >= as_utc(f.until))


def test_status_range() -> None:
    assert status_range("404") == (404, 405)
    assert status_range("4xx") == (400, 500)
    assert status_range("2XX") == (200, 300)
    for bad in ("9xx", "0xx", "4x", "44", "4040", "abc", "", "4xX0", "6xx", " 404"):
        with pytest.raises(ValueError):
            status_range(bad)


FILTERS = [
    LogFilter(),
    LogFilter(user_id=2),
    LogFilter(key_id=103),
    LogFilter(user_id=1, key_id=100),
    LogFilter(path="/v1/records"),
    LogFilter(path="/v1/records*"),
    LogFilter(path="/v1/a_b*"),  # '_' is literal: not /v1/axb%c
    LogFilter(path="/v1/a_b%*"),  # '%' is literal too
    LogFilter(path="/V1/*"),  # case-sensitive on SQLite as on PostgreSQL
    LogFilter(path="*"),
    LogFilter(status="200"),
    LogFilter(status="4xx"),
    LogFilter(status="5xx"),
    LogFilter(status="3xx", user_id=3),
    LogFilter(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=5)),
    LogFilter(since=(T0 + timedelta(hours=3)).astimezone(), status="2xx", path="/v1/*"),
    LogFilter(until=(T0 + timedelta(hours=1)).replace(tzinfo=None)),  # naive = UTC
]


def test_filters_pages_and_csv_match_python(engine: Engine) -> None:
    entries = synthetic(160)
    write(engine, entries)
    order = newest_first(entries)
    by_id = {e.request_id: e for e in entries}
    for f in FILTERS:
        want = [r for r in order if keep(by_id[r], f)]
        rows, total = admin_report.page(engine, f, limit=1000, offset=0)
        assert total == len(want), f
        assert [r["request_id"] for r in rows] == want, f
        rows, total = admin_report.page(engine, f, limit=7, offset=3)
        assert [r["request_id"] for r in rows] == want[3:10], f
        # the CSV reader: keyset chunks smaller than the ties, an offset, a cap
        chunks = list(admin_report.iter_rows(engine, f, limit=50, offset=5, chunk=3))
        assert [r["request_id"] for c in chunks for r in c] == want[5:55], f
        assert all(len(c) <= 3 for c in chunks)
    # what the filters select must be non-trivial, or the comparisons above prove nothing
    sizes = {f: admin_report.page(engine, f, limit=1, offset=0)[1] for f in FILTERS}
    assert sizes[LogFilter(path="/V1/*")] == 0
    assert 0 < sizes[LogFilter(path="/v1/a_b*")] < sizes[LogFilter(path="*")]
    assert 0 < sizes[LogFilter(path="/v1/a_b%*")] < sizes[LogFilter(path="/v1/a_b*")]
    assert all(n > 0 for f, n in sizes.items() if f.path != "/V1/*")


def test_page_rows_are_complete(engine: Engine) -> None:
    e = UsageEntry(request_id="only", method="post", path="/v1/query", status=402,
                   key_id=9, user_id=4, params={"body": {"limit": 5}}, error_code="X",
                   rows_returned=3, credits_charged=2, duration_ms=12.5, client="203.0.113.9",
                   created_at=T0)
    write(engine, [e])
    rows, total = admin_report.page(engine, LogFilter(), limit=10, offset=0)
    assert total == 1
    row = rows[0]
    assert set(row) == set(admin_report.COLUMNS)
    assert {k: row[k] for k in ("request_id", "method", "path", "status", "key_id", "user_id",
                                "params", "error_code", "rows_returned", "credits_charged",
                                "duration_ms", "client")} == {
        "request_id": "only", "method": "POST", "path": "/v1/query", "status": 402,
        "key_id": 9, "user_id": 4, "params": {"body": {"limit": 5}}, "error_code": "X",
        "rows_returned": 3, "credits_charged": 2, "duration_ms": 12.5,
        "client": "203.0.113.9"}
    assert row["created_at"] == T0.isoformat()


def test_bad_pages_refused(engine: Engine) -> None:
    for limit, offset in ((0, 0), (1001, 0), (5, -1)):
        with pytest.raises(ValueError):
            admin_report.page(engine, LogFilter(), limit=limit, offset=offset)
    with pytest.raises(ValueError):
        next(admin_report.iter_rows(engine, LogFilter(), limit=100_001, offset=0))
    with pytest.raises(ValueError):
        admin_report.page(engine, LogFilter(status="7xx"), limit=5, offset=0)


def test_safe_cell() -> None:
    for risky in ("=cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@A1", "\tx", "\rx", "=", "-",
                  "+1.5e3", "- 1"):
        assert safe_cell(risky) == "'" + risky
    for plain in ("+14155550123", "-12.5", "-1", "7", "", "cmd=", "a@b", "'=x", " =x"):
        assert safe_cell(plain) == plain


def test_csv_lines_round_trip() -> None:
    base = {name: None for name in admin_report.COLUMNS}
    rows = [
        {**base, "id": 1, "request_id": "-cmd", "params": {"q": "=cmd", "n": [1, "x"]},
         "path": "/v1/x", "status": 200, "duration_ms": 1.25, "client": "=1+2"},
        {**base, "id": 2, "request_id": "-5", "params": None, "path": "/v1/a,b\n\"c\"",
         "status": 404, "error_code": "NOT_FOUND", "duration_ms": -0.5},
    ]
    text = b"".join(admin_report.csv_lines(iter([rows[:1], rows[1:]]))).decode()
    got = list(csv.reader(io.StringIO(text)))
    assert got[0] == list(admin_report.COLUMNS)
    first = dict(zip(got[0], got[1], strict=True))
    assert first["request_id"] == "'-cmd"
    assert first["client"] == "'=1+2"
    assert json.loads(first["params"]) == {"q": "=cmd", "n": [1, "x"]}
    assert first["key_id"] == "" and first["status"] == "200" and first["duration_ms"] == "1.25"
    second = dict(zip(got[0], got[2], strict=True))
    assert second["request_id"] == "-5"  # a plain number passes
    assert second["path"] == "/v1/a,b\n\"c\""
    assert second["duration_ms"] == "-0.5" and second["params"] == ""
    assert len(got) == 3


# -- stats -------------------------------------------------------------------------------------

def nearest_rank(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent * len(ordered) / 100)) - 1]


def test_latency_percentiles_match_nearest_rank(engine: Engine) -> None:
    entries = synthetic(301)
    write(engine, entries)
    got, sampled = stats.latency(engine, stats.Window())
    assert sampled == 301
    groups: dict[tuple[str, str], list[float]] = {}
    for e in entries:
        groups.setdefault((e.method, e.path), []).append(e.duration_ms)
    assert {(g["method"], g["path"]) for g in got} == set(groups)
    for g in got:
        values = groups[(g["method"], g["path"])]
        assert g["requests"] == len(values)
        assert g["p50_ms"] == nearest_rank(values, 50)
        assert g["p95_ms"] == nearest_rank(values, 95)
        assert g["max_ms"] == max(values)
        assert g["avg_ms"] == pytest.approx(sum(values) / len(values))
    assert [g["requests"] for g in got] == sorted((g["requests"] for g in got), reverse=True)
    # the bounded sample: the newest N requests of the window
    window = stats.Window(since=T0 + timedelta(hours=3))
    got, sampled = stats.latency(engine, window, sample=40)
    newest = [e for e in sorted(entries, key=lambda e: (e.created_at, entries.index(e)),
                                reverse=True) if e.created_at and e.created_at >= window.since
              ][:40]
    assert sampled == 40
    groups = {}
    for e in newest:
        groups.setdefault((e.method, e.path), []).append(e.duration_ms)
    assert {(g["method"], g["path"]): (g["p50_ms"], g["p95_ms"]) for g in got} == {
        k: (nearest_rank(v, 50), nearest_rank(v, 95)) for k, v in groups.items()}


def test_small_groups_percentiles(engine: Engine) -> None:
    write(engine, [UsageEntry(request_id=f"s{i}", method="GET", path=f"/v1/p{n}", status=200,
                              duration_ms=float(d), created_at=T0)
                   for i, (n, d) in enumerate([(1, 5), (2, 9), (2, 1), (3, 3), (3, 1), (3, 2)])])
    got = {g["path"]: (g["p50_ms"], g["p95_ms"]) for g in stats.latency(engine,
                                                                          stats.Window())[0]}
    assert got == {"/v1/p1": (5.0, 5.0), "/v1/p2": (1.0, 9.0), "/v1/p3": (2.0, 3.0)}
    assert stats.latency(engine, stats.Window(since=T0 + timedelta(days=1))) == ([], 0)


def test_requests_per_day_and_top_users(engine: Engine) -> None:
    entries = synthetic(200)
    entries.append(UsageEntry(request_id="anon", method="GET", path="/v1/query", status=401,
                              created_at=T0))
    write(engine, entries)
    window = stats.Window(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=20))
    inside = [e for e in entries if e.created_at and window.since and window.until
              and window.since <= e.created_at < window.until]
    want: dict[str, dict[str, int]] = {}
    for e in inside:
        assert e.created_at is not None
        d = want.setdefault(e.created_at.date().isoformat(),
                            {"requests": 0, "errors": 0, "rows": 0, "credits": 0})
        d["requests"] += 1
        d["errors"] += e.status >= 400
        d["rows"] += e.rows_returned
        d["credits"] += e.credits_charged
    got = stats.requests_per_day(engine, window)
    assert len(got) == 2  # 22:00 UTC + 20 h crosses one UTC midnight
    assert {g["date"]: {k: g[k] for k in ("requests", "errors", "rows", "credits")}
            for g in got} == want
    assert sum(g["requests"] for g in stats.requests_per_day(engine, stats.Window())) == 201

    users = [create_user(engine, f"top{i}@example.com") for i in range(3)]
    counts: dict[int, int] = {}
    for e in entries:
        if e.user_id is not None:
            counts[e.user_id] = counts.get(e.user_id, 0) + 1
    top = stats.top_users(engine, stats.Window(), top=2)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    assert [(u["user_id"], u["requests"]) for u in top["by_requests"]] == ranked
    emails = {u.id: u.email for u in users}
    assert all(u["email"] == emails.get(u["user_id"]) for u in top["by_requests"])
    assert top["by_credits"] == []  # no settled holds yet

    # credits ranking comes from settled holds
    for u, spend in zip(users, (5, 30, 12), strict=True):
        ledger.grant(engine, u.id, 100, reason="t")
        hold = ledger.hold(engine, u.id, 40, request_id="q", endpoint="/v1/query")
        ledger.settle(engine, hold.id, spend)
    top = stats.top_users(engine, stats.Window(), top=2)
    assert [(u["user_id"], u["email"], u["credits"]) for u in top["by_credits"]] == [
        (users[1].id, users[1].email, 30), (users[2].id, users[2].email, 12)]
    future = stats.Window(since=datetime.now(UTC) + timedelta(days=1))
    assert stats.top_users(engine, future, top=5) == {"by_requests": [], "by_credits": []}


def test_credit_totals(engine: Engine) -> None:
    assert stats.credits(engine) == dict.fromkeys(
        ("granted", "refunded", "adjusted_up", "adjusted_down", "charged", "expired",
         "held_open", "total_granted", "total_spent"), 0)
    a = create_user(engine, "a@example.com").id
    b = create_user(engine, "b@example.com").id
    ledger.grant(engine, a, 100, reason="t")
    ledger.grant(engine, b, 50, reason="t", expires_at=datetime.now(UTC) + timedelta(days=1))
    ledger.refund(engine, a, 7, reason="sorry")
    ledger.adjust(engine, a, 3, reason="up")
    ledger.adjust(engine, b, -4, reason="down")
    h1 = ledger.hold(engine, a, 20, request_id="1", endpoint="/v1/query")
    ledger.settle(engine, h1.id, 11)
    h2 = ledger.hold(engine, b, 10, request_id="2", endpoint="/v1/query")
    ledger.release(engine, h2.id, reason="failed")
    ledger.hold(engine, b, 6, request_id="3", endpoint="/v1/export")  # still open
    ledger.expire_grants(engine, b, now=datetime.now(UTC) + timedelta(days=2))
    got = stats.credits(engine)
    assert got == {"granted": 150, "refunded": 7, "adjusted_up": 3, "adjusted_down": 4,
                   "charged": 11, "expired": got["expired"], "held_open": 6,
                   "total_granted": 160, "total_spent": 15}
    # b's 50 minus 4 adjusted minus 6 held: what was left expired
    assert got["expired"] == 40


def test_ingestion_totals(engine: Engine) -> None:
    assert stats.ingestion(engine) == {
        "jobs": dict.fromkeys(JOB_STATUSES, 0), "jobs_total": 0,
        "rows_read": 0, "rows_inserted": 0, "rows_duplicate": 0, "rows_quarantined": 0}
    claims = [claim_file(engine, source="s", path=f"/x/{i}", file_name=f"{i}.csv",
                         checksum=f"{i:064x}", size=10, options={}) for i in range(4)]
    finish_job(engine, claims[0].job_id, register=True, status="succeeded", rows_read=100,
               rows_inserted=80, rows_duplicate=15, rows_quarantined=5)
    finish_job(engine, claims[1].job_id, register=True, status="succeeded", rows_read=10,
               rows_inserted=10, rows_duplicate=0, rows_quarantined=0)
    fail_job(engine, claims[2].job_id, "broken", "BAD_FILE", rows_read=3)
    got = stats.ingestion(engine)
    jobs = {**dict.fromkeys(JOB_STATUSES, 0), "running": 1, "succeeded": 2, "failed": 1}
    assert got == {"jobs": jobs,
                   "jobs_total": 4, "rows_read": 113, "rows_inserted": 90,
                   "rows_duplicate": 15, "rows_quarantined": 5}
