"""Scheduled HTTP JSON sources: the table, its validation, and the one view that is shown.

The secret (an Authorization value, an API token) must be sent with every request, so it is
stored as given; it leaves this module only towards the fetcher (`Source.secret`). Everything
that shows a source (CLI, API, logs) goes through `public()`, which says "set" or "unset".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from recordbank.db.models import Base, utcnow
from recordbank.db.session import session_scope
from recordbank.ingest.errors import IngestError
from recordbank.ingest.mapping_config import load_mapping_file

PAGINATION_TYPES = ("none", "page", "cursor", "link")
STATUSES = ("ok", "empty", "failed")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an RFC 9110 token
# dotted keys; no control characters (PostgreSQL stores no NUL) and no lone surrogates
PATH = re.compile(r"^[^.\s\x00-\x1f\x7f\ud800-\udfff]+(\.[^.\s\x00-\x1f\x7f\ud800-\udfff]+)*$")
MIN_INTERVAL, MAX_INTERVAL = 10, 30 * 86_400
MAX_PAGES = 100_000
DEFAULT_PAGINATION: dict[str, Any] = {"type": "none", "page_param": "page", "start": 1,
                                      "cursor_param": "cursor", "cursor_path": "",
                                      "max_pages": 1000}


class HttpSource(Base):
    __tablename__ = "http_sources"
    __table_args__ = (Index("ix_http_sources_due", "enabled", "next_run_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(Text)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    records_path: Mapped[str] = mapped_column(String(500), default="")
    pagination: Mapped[dict[str, Any]] = mapped_column(JSON)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)  # not secret: shown as they are
    secret_header: Mapped[str | None] = mapped_column(String(100), nullable=True)
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # sent, never shown
    mapping_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)
    # Set while a run holds the source (scheduled or "run now"); a dead run's ends by itself.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_records: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SourceError(IngestError):
    """A source definition that cannot work (bad URL, header, path, mapping file...)."""

    code = "source:invalid"


class NotFound(SourceError):
    code = "source:not-found"


class Conflict(SourceError):
    code = "source:conflict"


@dataclass(frozen=True)
class Source:
    """What a run needs, secret included (never printed: see __repr__)."""

    id: int
    name: str
    url: str
    interval_seconds: int
    records_path: str
    pagination: dict[str, Any]
    headers: dict[str, str]
    secret_header: str | None
    secret: str | None
    mapping_file: str | None

    def __repr__(self) -> str:
        return f"Source(id={self.id}, name={self.name!r}, url={self.url!r}, secret=<hidden>)"


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive times; they were written as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    found = aware(value)
    return found.isoformat() if found else None


def public(row: HttpSource, now: datetime | None = None) -> dict[str, Any]:
    """The source as the CLI and the API show it: never the secret itself."""
    at = now or datetime.now(UTC)
    lease = aware(row.lease_until)
    return {
        "id": row.id, "name": row.name, "url": row.url,
        "interval_seconds": row.interval_seconds, "records_path": row.records_path,
        "pagination": dict(row.pagination), "headers": dict(row.headers),
        "secret_header": row.secret_header, "secret": "set" if row.secret else "unset",
        "mapping_file": row.mapping_file, "enabled": bool(row.enabled),
        "running": lease is not None and lease > at,
        "next_run_at": _iso(row.next_run_at), "last_run_at": _iso(row.last_run_at),
        "last_status": row.last_status, "last_error": row.last_error,
        "last_job_id": row.last_job_id, "last_records": row.last_records,
        "failures": row.failures, "created_at": _iso(row.created_at),
    }


def to_source(row: HttpSource) -> Source:
    return Source(row.id, row.name, row.url, row.interval_seconds, row.records_path,
                  dict(row.pagination), dict(row.headers), row.secret_header, row.secret,
                  row.mapping_file)


# --- validation ---------------------------------------------------------------------------

def check_name(name: str) -> str:
    if not NAME.match(name):
        raise SourceError(f"source name {name[:120]!r}: 1-100 letters, digits, '_', '.' or "
                          "'-', starting with a letter or digit")
    return name


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 4000 \
            or any(c < " " or c == "\x7f" for c in url):
        raise SourceError(f"not an http(s) URL: {url[:200]!r}")
    return url


def check_interval(seconds: int) -> int:
    if isinstance(seconds, bool) or not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise SourceError(f"interval must be {MIN_INTERVAL} to {MAX_INTERVAL} seconds")
    return int(seconds)


def check_path(path: str, what: str) -> str:
    path = path.strip()
    if path and (len(path) > 500 or not PATH.match(path)):
        raise SourceError(f"{what} {path[:100]!r}: dotted keys such as data.items")
    return path


def _header_value(name: str, value: str) -> str:
    if any((c < " " and c != "\t") or c == "\x7f" or "\ud800" <= c <= "\udfff" for c in value) \
            or len(value) > 8000:
        raise SourceError(f"header {name}: control characters or too long")
    return value.strip()


def check_headers(headers: dict[str, str], secret_header: str | None) -> dict[str, str]:
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not HEADER_NAME.match(name):
            raise SourceError(f"not a header name: {name[:100]!r}")
        if name.lower() in {k.lower() for k in clean}:
            raise SourceError(f"header {name} given twice")
        clean[name] = _header_value(name, str(value))
    if secret_header and secret_header.lower() in {k.lower() for k in clean}:
        raise SourceError(f"{secret_header} is the secret header; do not also send it in "
                          "headers (they are shown)")
    if len(clean) > 50:
        raise SourceError("at most 50 headers")
    return clean


def check_secret(secret_header: str | None, secret: str | None) -> tuple[str | None, str | None]:
    if secret_header is not None and not HEADER_NAME.match(secret_header):
        raise SourceError(f"not a header name: {secret_header[:100]!r}")
    if bool(secret_header) != bool(secret):
        raise SourceError("the secret header and the secret go together (both or neither)")
    if secret_header and secret:
        _header_value(secret_header, secret)
    return secret_header or None, secret or None


def check_pagination(raw: dict[str, Any] | None) -> dict[str, Any]:
    given = dict(raw or {})
    unknown = set(given) - set(DEFAULT_PAGINATION)
    if unknown:
        raise SourceError(f"unknown pagination keys: {', '.join(sorted(unknown))}")
    p = {**DEFAULT_PAGINATION, **{k: v for k, v in given.items() if v is not None}}
    if p["type"] not in PAGINATION_TYPES:
        raise SourceError(f"pagination type must be one of {', '.join(PAGINATION_TYPES)}")
    for key in ("page_param", "cursor_param"):
        if not isinstance(p[key], str) or not re.match(r"^[A-Za-z0-9_.\[\]-]{1,100}$", p[key]):
            raise SourceError(f"pagination {key} must be a query parameter name")
    for key, low, high in (("start", 0, 10**9), ("max_pages", 1, MAX_PAGES)):
        if isinstance(p[key], bool) or not isinstance(p[key], int) \
                or not low <= p[key] <= high:
            raise SourceError(f"pagination {key} must be an integer from {low} to {high}")
    p["cursor_path"] = check_path(str(p["cursor_path"]), "cursor_path")
    if p["type"] == "cursor" and not p["cursor_path"]:
        raise SourceError("cursor pagination needs cursor_path (where the next cursor is)")
    return p


def check_mapping(path: str | None) -> str | None:
    """Loaded now, so that a bad mapping file fails here and not at every run's ingest."""
    if not path:
        return None
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in path):
        raise SourceError(f"mapping file {path[:200]!r}: not a usable path")
    resolved = Path(path).expanduser().resolve()
    try:
        load_mapping_file(resolved)
    except (OSError, IngestError) as exc:
        raise SourceError(f"mapping file {resolved}: {exc}") from exc
    return str(resolved)


# --- reading and writing ------------------------------------------------------------------

# Called with the session and the source as shown, inside the change's transaction: an admin
# route writes its audit row there, so the change and its record commit together.
AlsoInTransaction = Callable[[Session, dict[str, Any]], None]


def _noop(_s: Session, _shown: dict[str, Any]) -> None:
    return None


def create(engine: Engine, *, name: str, url: str, interval_seconds: int = 3600,
           records_path: str = "", pagination: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None, secret_header: str | None = None,
           secret: str | None = None, mapping_file: str | None = None,
           enabled: bool = True, also: AlsoInTransaction = _noop) -> dict[str, Any]:
    """A new source, due at once (its first run shows at once whether it works)."""
    header, value = check_secret(secret_header, secret)
    row = HttpSource(name=check_name(name), url=check_url(url),
                     interval_seconds=check_interval(interval_seconds),
                     records_path=check_path(records_path, "records_path"),
                     pagination=check_pagination(pagination),
                     headers=check_headers(headers or {}, header), secret_header=header,
                     secret=value, mapping_file=check_mapping(mapping_file),
                     enabled=enabled, next_run_at=datetime.now(UTC), failures=0)
    try:
        with session_scope(engine) as s:
            s.add(row)
            s.flush()
            shown = public(row)
            also(s, shown)
            return shown
    except IntegrityError as exc:
        raise Conflict(f"a source named {name!r} exists already") from exc


def _row(s: Any, key: int | str) -> HttpSource:
    stmt = select(HttpSource).where(HttpSource.id == key if isinstance(key, int)
                                    else HttpSource.name == key)
    row = s.scalars(stmt.with_for_update()).first()
    if row is None:
        raise NotFound(f"no HTTP source {key!r}")
    return row


def get(engine: Engine, key: int | str) -> dict[str, Any]:
    with session_scope(engine) as s:
        return public(_row(s, key))


def load(engine: Engine, key: int | str) -> Source:
    """The source with its secret, for a run."""
    with session_scope(engine) as s:
        return to_source(_row(s, key))


def list_all(engine: Engine) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return [public(r) for r in s.scalars(select(HttpSource).order_by(HttpSource.name))]


UPDATABLE = ("url", "interval_seconds", "records_path", "pagination", "headers",
             "secret_header", "secret", "mapping_file", "enabled")


def update(engine: Engine, key: int | str, changes: dict[str, Any], *,
           also: Callable[[Session, dict[str, Any], dict[str, Any]], None] | None = None,
           ) -> dict[str, Any]:
    """Change the given fields only. A shorter interval brings the next run forward; enabling
    a source whose run time passed while it was off runs it soon."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise SourceError(f"cannot change {', '.join(sorted(unknown))}")
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        row = _row(s, key)
        before = public(row, now)
        if "url" in changes:
            row.url = check_url(changes["url"])
        if "records_path" in changes:
            row.records_path = check_path(changes["records_path"] or "", "records_path")
        if "pagination" in changes:
            row.pagination = check_pagination(changes["pagination"])
        if "secret_header" in changes or "secret" in changes:
            row.secret_header, row.secret = check_secret(
                changes.get("secret_header", row.secret_header),
                changes.get("secret", row.secret))
        row.headers = check_headers(changes.get("headers", row.headers) or {},
                                    row.secret_header)
        if "mapping_file" in changes:
            row.mapping_file = check_mapping(changes["mapping_file"])
        if "interval_seconds" in changes:
            row.interval_seconds = check_interval(changes["interval_seconds"])
            soonest = now + timedelta(seconds=row.interval_seconds)
            due = aware(row.next_run_at)
            if due is None or due > soonest:
                row.next_run_at = soonest
        if "enabled" in changes:
            row.enabled = bool(changes["enabled"])
            if row.enabled and row.next_run_at is None:
                row.next_run_at = now
        s.flush()
        after = public(row, now)
        if also is not None:  # (session, before, after)
            also(s, before, after)
        return after


def delete(engine: Engine, key: int | str, *,
           also: AlsoInTransaction = _noop) -> dict[str, Any]:
    with session_scope(engine) as s:
        row = _row(s, key)
        shown = public(row)
        s.delete(row)
        also(s, shown)
        return shown
