"""The admin audit log: who changed which account, key, balance, HTTP source or webhook, and
when.

Account changes (users, keys, credits) write their row in the change's own transaction, so a
change without its audit row cannot be committed and a refused change leaves none. Sources and
webhooks are changed by modules that run their own transactions: their rows follow the change
(`record`). Details are JSON and pass through a scrubber: a plaintext API key or webhook
signing secret never reaches this table, even if a caller puts one in by mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from recordbank.db.models import Base, utcnow
from recordbank.db.session import session_scope
from recordbank.usage.report import as_utc

ACTIONS = ("user.create", "user.update", "credits.grant", "credits.adjust", "key.issue",
           "key.rotate", "key.revoke", "source.create", "source.update", "source.enable",
           "source.disable", "source.delete", "source.run", "webhook.create", "webhook.delete")
TARGET_TYPES = ("user", "key", "source", "webhook")
MAX_PAGE = 1000
REDACTED = "[redacted]"
# A plaintext API key, or a webhook signing secret (whsec_ + token_urlsafe(32)).
_PLAINTEXT_KEY = re.compile(r"rb_live_[A-Za-z0-9]{40}|whsec_[A-Za-z0-9_-]{43}")


class AdminAudit(Base):
    __tablename__ = "admin_audit"
    __table_args__ = (Index("ix_admin_audit_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)
    # No foreign keys: the audit trail must outlive whatever it names.
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    actor_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(64), default="")


@dataclass(frozen=True)
class Actor:
    """Who acts: the admin's user and key, and the request that carried the action."""

    user_id: int | None
    key_id: int | None
    request_id: str = ""


def _utc(value: datetime) -> datetime:
    return as_utc(value)  # naive = UTC; clamped at the ends of the calendar


def scrub(value: Any) -> Any:
    """JSON-safe copy: datetimes as ISO text, anything shaped like a plaintext key redacted."""
    if isinstance(value, dict):
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, str):
        return _PLAINTEXT_KEY.sub(REDACTED, value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return _PLAINTEXT_KEY.sub(REDACTED, str(value))


def safe_url(url: str) -> str:
    """A URL as the audit log keeps it: without a password and without query values, either
    of which may carry a token (the query's parameter names stay)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{REDACTED}@{host}" if ":" in user else netloc
    query = "&".join(f"{name}={REDACTED}" if value else name
                     for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def write(session: Session, actor: Actor, action: str, target_type: str,
          target_id: int | None, details: dict[str, Any] | None = None) -> AdminAudit:
    """Add an audit row to the caller's transaction (it commits or rolls back with it)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if target_type not in TARGET_TYPES:
        raise ValueError(f"unknown audit target type {target_type!r}")
    row = AdminAudit(created_at=utcnow(), actor_user_id=actor.user_id,
                     actor_key_id=actor.key_id, action=action, target_type=target_type,
                     target_id=target_id, details=scrub(details or {}),
                     request_id=actor.request_id[:64])
    session.add(row)
    session.flush()
    return row


def record(engine: Engine, actor: Actor, action: str, target_type: str,
           target_id: int | None, details: dict[str, Any] | None = None) -> int:
    """An audit row in its own transaction, for actions that are not one DB change (running
    an HTTP source now); returns the row id. Changes audit with `write` in their own
    transaction."""
    with session_scope(engine) as session:
        return write(session, actor, action, target_type, target_id, details).id


def as_dict(row: AdminAudit) -> dict[str, Any]:
    return {"id": row.id, "created_at": _utc(row.created_at).isoformat(),
            "actor_user_id": row.actor_user_id, "actor_key_id": row.actor_key_id,
            "action": row.action, "target_type": row.target_type, "target_id": row.target_id,
            "details": row.details or {}, "request_id": row.request_id}


def search(engine: Engine, *, actor_user_id: int | None = None, action: str | None = None,
           target_type: str | None = None, target_id: int | None = None,
           since: datetime | None = None, until: datetime | None = None,
           limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """One page of audit rows, newest first, and how many match in all.
    ``since`` is inclusive, ``until`` exclusive; naive times are UTC."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if action is not None and action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    if target_type is not None and target_type not in TARGET_TYPES:
        raise ValueError(f"target type must be one of {', '.join(TARGET_TYPES)}")
    conds: list[ColumnElement[bool]] = []
    if actor_user_id is not None:
        conds.append(AdminAudit.actor_user_id == actor_user_id)
    if action is not None:
        conds.append(AdminAudit.action == action)
    if target_type is not None:
        conds.append(AdminAudit.target_type == target_type)
    if target_id is not None:
        conds.append(AdminAudit.target_id == target_id)
    if since is not None:
        conds.append(AdminAudit.created_at >= _utc(since))
    if until is not None:
        conds.append(AdminAudit.created_at < _utc(until))
    page = (select(AdminAudit).where(*conds)
            .order_by(AdminAudit.created_at.desc(), AdminAudit.id.desc())
            .limit(limit).offset(offset))
    with session_scope(engine) as session:
        total = int(session.scalar(select(func.count()).select_from(AdminAudit)
                                   .where(*conds)) or 0)
        rows = [as_dict(r) for r in session.scalars(page)]
    return rows, total
