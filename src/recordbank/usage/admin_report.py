"""The whole usage log for admins: filtered pages, and the same rows as a CSV stream.

Every filter value is a bound parameter. A path prefix (``/v1/records*``) goes through LIKE with
its wildcards escaped, plus an exact ``substr`` comparison: SQLite's LIKE ignores ASCII case and
PostgreSQL's does not, and a filter must mean the same thing on both.

The CSV is read in keyset chunks on (created_at, id), one short query per chunk: a 100,000-row
download holds no connection or transaction across the stream (its chunks are pulled from
different worker threads), and rows written meanwhile are newer, so they cannot shift it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Engine, Select, and_, func, or_, select

from recordbank.accounts.models import User
from recordbank.usage.models import UsageRecord
from recordbank.usage.report import as_utc, iso_time

_T = UsageRecord.__table__
COLUMNS: Final = ("id", "created_at", "request_id", "user_id", "key_id", "method", "path",
                  "params", "status", "error_code", "rows_returned", "credits_charged",
                  "duration_ms", "client")
MAX_PAGE: Final = 1000  # rows per JSON page
MAX_CSV_ROWS: Final = 100_000  # rows per CSV download
CSV_CHUNK: Final = 1000
STATUS_PATTERN: Final = r"^[1-5]([0-9]{2}|[xX]{2})$"
_STATUS = re.compile(STATUS_PATTERN)
_PLAIN_NUMBER = re.compile(r"^[+-]?[0-9]+([.][0-9]+)?$")
_FORMULA_STARTS: Final = frozenset("=+-@\t\r")


@dataclass(frozen=True)
class LogFilter:
    """What an admin narrows the log to; None = no condition."""

    user_id: int | None = None
    key_id: int | None = None
    path: str | None = None  # exact, or a prefix when it ends with '*'
    status: str | None = None  # '404' or a class such as '4xx'
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def status_range(text: str) -> tuple[int, int]:
    """'404' -> [404, 405); '4xx' -> [400, 500). ValueError for anything else."""
    if not _STATUS.fullmatch(text):
        raise ValueError(f"status must be a code such as 404 or a class such as 4xx, not {text!r}")
    if text[1:].lower() == "xx":
        low = int(text[0]) * 100
        return low, low + 100
    return int(text), int(text) + 1


def conditions(f: LogFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.user_id is not None:
        conds.append(_T.c.user_id == f.user_id)
    if f.key_id is not None:
        conds.append(_T.c.key_id == f.key_id)
    if f.path is not None:
        if f.path.endswith("*"):
            prefix = f.path[:-1]
            if prefix:
                conds.append(_T.c.path.startswith(prefix, autoescape=True))
                conds.append(func.substr(_T.c.path, 1, len(prefix)) == prefix)
        else:
            conds.append(_T.c.path == f.path)
    if f.status is not None:
        low, high = status_range(f.status)
        conds.append(and_(_T.c.status >= low, _T.c.status < high))
    if f.since is not None:
        conds.append(_T.c.created_at >= as_utc(f.since))
    if f.until is not None:
        conds.append(_T.c.created_at < as_utc(f.until))
    return conds


def _select(conds: list[ColumnElement[bool]]) -> Select[Any]:
    return (select(*(_T.c[name] for name in COLUMNS)).where(*conds)
            .order_by(_T.c.created_at.desc(), _T.c.id.desc()))


def _check_page(limit: int, offset: int, most: int) -> None:
    if not 1 <= limit <= most:
        raise ValueError(f"limit must be between 1 and {most}")
    if offset < 0:
        raise ValueError("offset must be >= 0")


def _out(row: Any) -> dict[str, Any]:
    item = dict(row)
    item["created_at"] = iso_time(row["created_at"])
    return item


def page(engine: Engine, f: LogFilter, *, limit: int, offset: int
         ) -> tuple[list[dict[str, Any]], int]:
    """One page of matching requests, newest first, and how many match in all."""
    _check_page(limit, offset, MAX_PAGE)
    conds = conditions(f)
    count = select(func.count()).select_from(_T).where(*conds)
    with engine.connect() as conn:
        total = int(conn.execute(count).scalar_one())
        rows = conn.execute(_select(conds).limit(limit).offset(offset)).mappings().all()
    return [_out(r) for r in rows], total


def iter_rows(engine: Engine, f: LogFilter, *, limit: int, offset: int,
              chunk: int = CSV_CHUNK) -> Iterator[list[dict[str, Any]]]:
    """The rows ``page`` would give for this limit and offset (up to MAX_CSV_ROWS), in chunks."""
    _check_page(limit, offset, MAX_CSV_ROWS)
    base = conditions(f)
    left = limit
    after: tuple[Any, int] | None = None
    while left > 0:
        n = min(chunk, left)
        conds = list(base)
        if after is None:
            stmt = _select(conds).limit(n).offset(offset)
        else:
            at, last_id = after
            conds.append(or_(_T.c.created_at < at,
                             and_(_T.c.created_at == at, _T.c.id < last_id)))
            stmt = _select(conds).limit(n)
        with engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        if not rows:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])  # as the driver gave it: binds back
        yield [_out(r) for r in rows]
        left -= len(rows)
        if len(rows) < n:
            return


def user_summary(engine: Engine, user_id: int) -> dict[str, Any] | None:
    """The user a usage report is about, or None when there is no such user."""
    stmt = select(User.id, User.email, User.name, User.role, User.status).where(
        User.id == user_id)
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def safe_cell(text: str) -> str:
    """A leading ' for a cell a spreadsheet would run as a formula; plain numbers pass."""
    if text and text[0] in _FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dict | list):
        return safe_cell(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return safe_cell(str(value))


def csv_lines(chunks: Iterator[list[dict[str, Any]]]) -> Iterator[bytes]:
    """Header, then one encoded block per chunk (params as JSON text, NULL as empty)."""
    yield (",".join(COLUMNS) + "\n").encode()
    for rows in chunks:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in rows:
            writer.writerow([_cell(row[name]) for name in COLUMNS])
        yield buf.getvalue().encode()
