"""Numbers for the admin dashboard: records in the store, ingestion, credits, requests, latency.

The store is scanned once (GROUPING SETS over country, status and source). Relational numbers
are plain aggregates that read the same on SQLite and PostgreSQL. Latency percentiles are the
nearest-rank p50/p95 per endpoint, computed in SQL with window functions (both engines have
them) over a bounded sample: the newest LATENCY_SAMPLE requests of the window, so a busy month
never sorts millions of rows for one dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Engine, Table, and_, case, func, select

from recordbank.accounts.models import User
from recordbank.billing.models import CreditHold, LedgerEntry
from recordbank.config import Settings
from recordbank.db.models import JOB_STATUSES, Job
from recordbank.query.run import run_sql
from recordbank.store.client import Store
from recordbank.usage.models import UsageRecord
from recordbank.usage.report import as_utc, utc_day

_log = cast(Table, UsageRecord.__table__)
_jobs = cast(Table, Job.__table__)
_ledger = cast(Table, LedgerEntry.__table__)
_holds = cast(Table, CreditHold.__table__)
_users = cast(Table, User.__table__)

BREAKDOWNS: Final = ("country", "status", "source")  # columns of `records`, never caller text
LATENCY_SAMPLE: Final = 100_000
_SUM_ZERO = 0


@dataclass(frozen=True)
class Window:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def on(self, column: Any) -> list[Any]:
        conds = []
        if self.since is not None:
            conds.append(column >= as_utc(self.since))
        if self.until is not None:
            conds.append(column < as_utc(self.until))
        return conds


def _int(value: Any) -> int:
    return int(value or 0)  # PostgreSQL sums of BIGINT come back as Decimal


# -- the record store ---------------------------------------------------------------------------

_BREAKDOWN_SQL = """
SELECT grouping(country, status, source) AS g, country, status, source, count() AS n
FROM records
GROUP BY GROUPING SETS ((country), (status), (source), ())
"""
# grouping() sets one bit per column NOT in the set, first column highest.
_GROUPING_BITS: Final = {0b011: "country", 0b101: "status", 0b110: "source"}


def records(store: Store, settings: Settings, *, top: int) -> dict[str, Any]:
    """Total records and the top values of each breakdown; `other` counts the rest."""
    rows = run_sql(store, _BREAKDOWN_SQL, {}, settings)
    total = 0
    groups: dict[str, list[tuple[str, int]]] = {name: [] for name in BREAKDOWNS}
    for g, country, status, source, n in rows:
        if g == 0b111:
            total = int(n)
            continue
        name = _GROUPING_BITS[int(g)]
        value = {"country": country, "status": status, "source": source}[name]
        groups[name].append((str(value), int(n)))
    out: dict[str, Any] = {"total": total}
    for name, counts in groups.items():
        counts.sort(key=lambda item: (-item[1], item[0]))
        shown = counts[:top]
        out[name] = {"values": [{"value": v, "records": n} for v, n in shown],
                     "other": total - sum(n for _, n in shown)}
    return out


# -- the relational database --------------------------------------------------------------------

def ingestion(engine: Engine) -> dict[str, Any]:
    """Jobs by status and the rows they read, inserted, found duplicate and quarantined."""
    stmt = (select(_jobs.c.status, func.count(),
                   func.sum(_jobs.c.rows_read), func.sum(_jobs.c.rows_inserted),
                   func.sum(_jobs.c.rows_duplicate), func.sum(_jobs.c.rows_quarantined))
            .group_by(_jobs.c.status))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    jobs = dict.fromkeys(JOB_STATUSES, 0)
    sums = [0, 0, 0, 0]
    for status, n, *parts in rows:
        jobs[str(status)] = int(n)
        sums = [s + _int(p) for s, p in zip(sums, parts, strict=True)]
    return {"jobs": jobs, "jobs_total": sum(jobs.values()), "rows_read": sums[0],
            "rows_inserted": sums[1], "rows_duplicate": sums[2], "rows_quarantined": sums[3]}


def _sum_if(cond: Any, value: Any) -> Any:
    return func.coalesce(func.sum(case((cond, value), else_=_SUM_ZERO)), _SUM_ZERO)


def credits(engine: Engine) -> dict[str, int]:
    """All-time credits put in (grants, refunds, positive adjustments) and taken out (settled
    charges, negative adjustments), plus expiries and what open holds keep aside."""
    kind, amount = _ledger.c.kind, _ledger.c.amount
    ledger_stmt = select(
        _sum_if(kind == "grant", amount), _sum_if(kind == "refund", amount),
        _sum_if(and_(kind == "adjustment", amount > 0), amount),
        _sum_if(and_(kind == "adjustment", amount < 0), -amount),
        _sum_if(kind == "expiry", -amount))
    holds_stmt = select(
        _sum_if(_holds.c.status == "settled", func.coalesce(_holds.c.charged, _SUM_ZERO)),
        _sum_if(_holds.c.status == "open", _holds.c.amount))
    with engine.connect() as conn:
        granted, refunded, up, down, expired = (_int(v) for v in conn.execute(ledger_stmt).one())
        charged, held = (_int(v) for v in conn.execute(holds_stmt).one())
    return {"granted": granted, "refunded": refunded, "adjusted_up": up, "adjusted_down": down,
            "charged": charged, "expired": expired, "held_open": held,
            "total_granted": granted + refunded + up, "total_spent": charged + down}


def requests_per_day(engine: Engine, window: Window) -> list[dict[str, Any]]:
    """Per UTC day (days without requests left out), oldest first."""
    day = utc_day(engine.dialect.name).label("day")
    stmt = (select(day, func.count(), _sum_if(_log.c.status >= 400, 1),
                   func.coalesce(func.sum(_log.c.rows_returned), _SUM_ZERO),
                   func.coalesce(func.sum(_log.c.credits_charged), _SUM_ZERO))
            .where(*window.on(_log.c.created_at)).group_by(day).order_by(day))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [{"date": d.isoformat() if hasattr(d, "isoformat") else str(d),
             "requests": int(n), "errors": _int(e), "rows": _int(r), "credits": _int(c)}
            for d, n, e, r, c in rows]


def _emails(engine: Engine, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(_users.c.id, _users.c.email).where(_users.c.id.in_(ids)))
        return {int(i): str(e) for i, e in rows}


def top_users(engine: Engine, window: Window, *, top: int) -> dict[str, list[dict[str, Any]]]:
    """By requests (usage log) and by credits charged (settled holds closed in the window)."""
    requests = func.count().label("n")
    by_requests = (select(_log.c.user_id, requests)
                   .where(_log.c.user_id.is_not(None), *window.on(_log.c.created_at))
                   .group_by(_log.c.user_id).order_by(requests.desc(), _log.c.user_id)
                   .limit(top))
    charged = func.sum(_holds.c.charged).label("n")
    by_credits = (select(_holds.c.user_id, charged)
                  .where(_holds.c.status == "settled", _holds.c.charged > 0,
                         *window.on(_holds.c.closed_at))
                  .group_by(_holds.c.user_id).order_by(charged.desc(), _holds.c.user_id)
                  .limit(top))
    with engine.connect() as conn:
        req_rows = [(int(u), int(n)) for u, n in conn.execute(by_requests)]
        cred_rows = [(int(u), _int(n)) for u, n in conn.execute(by_credits)]
    emails = _emails(engine, sorted({u for u, _ in req_rows} | {u for u, _ in cred_rows}))
    return {
        "by_requests": [{"user_id": u, "email": emails.get(u), "requests": n}
                        for u, n in req_rows],
        "by_credits": [{"user_id": u, "email": emails.get(u), "credits": n}
                       for u, n in cred_rows],
    }


def latency(engine: Engine, window: Window, *, sample: int = LATENCY_SAMPLE
            ) -> tuple[list[dict[str, Any]], int]:
    """Nearest-rank p50/p95 (and mean, max) of duration_ms per method and path over the newest
    `sample` requests of the window, busiest endpoint first; and the sample's size."""
    recent = (select(_log.c.method, _log.c.path, _log.c.duration_ms)
              .where(*window.on(_log.c.created_at))
              .order_by(_log.c.created_at.desc(), _log.c.id.desc()).limit(sample).subquery())
    part = (recent.c.method, recent.c.path)
    ranked = select(
        recent.c.method, recent.c.path, recent.c.duration_ms,
        func.row_number().over(partition_by=part, order_by=recent.c.duration_ms).label("rn"),
        func.count().over(partition_by=part).label("n"),
    ).subquery()

    def rank(percent: int) -> Any:  # ceil(percent/100 * n) in integer arithmetic
        return (ranked.c.n * percent + 99) // 100

    n = func.count().label("requests")
    stmt = (select(ranked.c.method, ranked.c.path, n,
                   func.max(case((ranked.c.rn == rank(50), ranked.c.duration_ms))),
                   func.max(case((ranked.c.rn == rank(95), ranked.c.duration_ms))),
                   func.avg(ranked.c.duration_ms), func.max(ranked.c.duration_ms))
            .group_by(ranked.c.method, ranked.c.path)
            .order_by(n.desc(), ranked.c.path, ranked.c.method))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    out = [{"method": m, "path": p, "requests": int(c), "p50_ms": float(p50),
            "p95_ms": float(p95), "avg_ms": float(avg), "max_ms": float(top)}
           for m, p, c, p50, p95, avg, top in rows]
    return out, sum(int(r["requests"]) for r in out)
