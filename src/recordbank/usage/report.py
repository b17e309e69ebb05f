"""Reading the usage log back: a user's request history and per-day, per-endpoint totals.

Times are UTC throughout: SQLite keeps the naive UTC text that the log wrote, PostgreSQL a
timestamptz, so days are cut in UTC on both (PostgreSQL converts explicitly instead of using the
session time zone). Results are JSON-ready dicts (ISO strings for times and days).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Engine,
    Integer,
    case,
    cast,
    func,
    literal_column,
    select,
)

from recordbank.usage.models import UsageRecord

MAX_PAGE = 10_000
_T = UsageRecord.__table__
_HISTORY_COLUMNS = ("id", "created_at", "request_id", "key_id", "method", "path", "params",
                    "status", "error_code", "rows_returned", "credits_charged", "duration_ms",
                    "client")


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted. A time within its offset of
    year 1 or 9999 (0001-01-01T00:00+01:00) has no UTC datetime: it becomes the first or last
    one there is, which any filter or comparison treats the same."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year < 5000 else datetime.max).replace(tzinfo=UTC)


def _filters(user_id: int, since: datetime | None, until: datetime | None,
             endpoint: str | None = None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [_T.c.user_id == user_id]
    if since is not None:
        conds.append(_T.c.created_at >= as_utc(since))
    if until is not None:
        conds.append(_T.c.created_at < as_utc(until))
    if endpoint is not None:
        conds.append(_T.c.path == endpoint)
    return conds


def iso_time(value: datetime | str) -> str:
    if isinstance(value, str):  # defensive: a driver that hands back text
        value = datetime.fromisoformat(value)
    return as_utc(value).isoformat()


def history(engine: Engine, user_id: int, *, limit: int, offset: int,
            since: datetime | None = None, until: datetime | None = None,
            endpoint: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """One page of a user's requests, newest first, and how many match in all.
    ``since`` is inclusive, ``until`` exclusive; ``endpoint`` matches the path exactly."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValueError("offset must be >= 0")
    conds = _filters(user_id, since, until, endpoint)
    columns = [_T.c[name] for name in _HISTORY_COLUMNS]
    page = (select(*columns).where(*conds)
            .order_by(_T.c.created_at.desc(), _T.c.id.desc()).limit(limit).offset(offset))
    count = select(func.count()).select_from(_T).where(*conds)
    with engine.connect() as conn:
        total = int(conn.execute(count).scalar_one())
        rows = conn.execute(page).mappings().all()
    out: list[dict[str, Any]] = []
    for row in rows:
        item = dict(row)
        item["created_at"] = iso_time(row["created_at"])
        out.append(item)
    return out, total


def utc_day(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        # literal 'UTC' (not a bound parameter) so the GROUP BY expression matches the SELECT
        return cast(func.timezone(literal_column("'UTC'"), _T.c.created_at), Date)
    return func.date(_T.c.created_at)


def totals(engine: Engine, user_id: int, *, since: datetime | None = None,
           until: datetime | None = None) -> list[dict[str, Any]]:
    """Per UTC day and endpoint: requests, rows, credits, errors (status >= 400); oldest first."""
    day = utc_day(engine.dialect.name).label("day")
    stmt = (
        select(
            day,
            _T.c.path,
            func.count().label("requests"),
            func.coalesce(func.sum(_T.c.rows_returned), 0).label("rows"),
            func.coalesce(func.sum(_T.c.credits_charged), 0).label("credits"),
            func.coalesce(func.sum(cast(case((_T.c.status >= 400, 1), else_=0), Integer)), 0)
            .label("errors"),
        )
        .where(*_filters(user_id, since, until))
        .group_by(day, _T.c.path)
        .order_by(day, _T.c.path)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    out: list[dict[str, Any]] = []
    for d, path, requests, n_rows, credits, errors in rows:
        out.append({
            "date": d.isoformat() if isinstance(d, date) else str(d),
            "endpoint": path,
            "requests": int(requests),
            "rows": int(n_rows),
            "credits": int(credits),
            "errors": int(errors),
        })
    return out
