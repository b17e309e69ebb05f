"""Account administration: search, create and change users; issue, list, rotate and revoke
keys; grant and take back credits.

Every change writes its audit row (accounts.audit) in the same transaction: a crash cannot
leave a change without its row, and a refused change leaves neither. Writing
transactions start with a write (the insert, or an UPDATE that takes the row), never a read:
on PostgreSQL that is the row lock held to commit, on SQLite the database write lock taken up
front (a transaction that reads first and writes later can fail with SQLITE_BUSY on upgrade).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recordbank.accounts import audit
from recordbank.accounts.audit import Actor
from recordbank.accounts.models import ROLES, USER_STATUSES, ApiKey, User
from recordbank.accounts.users import KEY_ATTEMPTS, AccountError, IssuedKey, add_key, check_scopes
from recordbank.billing import ledger
from recordbank.billing.models import LedgerEntry
from recordbank.db.models import utcnow
from recordbank.db.session import session_scope

MAX_PAGE = 1000
EMAIL_MAX = 320
UPDATABLE = ("name", "role", "status", "rate_limit")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")


class NotFound(AccountError):
    """No user or key with this id."""


class Conflict(AccountError):
    """The change clashes with the current state (duplicate email, revoked key, …)."""


@dataclass(frozen=True)
class RotatedKey:
    issued: IssuedKey
    replaced_key_id: int


def normalize_email(email: str) -> str:
    """Lower-cased and trimmed, or AccountError saying what is wrong with it."""
    value = email.strip().lower()
    if len(value) > EMAIL_MAX:
        raise AccountError(f"email is longer than {EMAIL_MAX} characters")
    if not _EMAIL.match(value):
        raise AccountError(f"not an email address: {email!r} (expected name@domain.tld)")
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat() if aware is not None else None


def user_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
            "status": user.status, "rate_limit": user.rate_limit,
            "created_at": _iso(user.created_at), "updated_at": _iso(user.updated_at)}


def key_dict(key: ApiKey, now: datetime | None = None) -> dict[str, Any]:
    """What an admin may see of a key: never its hash, never its plaintext."""
    at = now or utcnow()
    expires = _aware(key.expires_at)
    state = ("revoked" if key.revoked_at is not None
             else "expired" if expires is not None and expires <= at else "active")
    return {"id": key.id, "user_id": key.user_id, "name": key.name, "prefix": key.prefix,
            "scopes": list(key.scopes or []), "state": state,
            "created_at": _iso(key.created_at), "last_used_at": _iso(key.last_used_at),
            "expires_at": _iso(key.expires_at), "revoked_at": _iso(key.revoked_at)}


def issued_dict(issued: IssuedKey, engine: Engine) -> dict[str, Any]:
    """A fresh key as the admin sees it once: its public fields plus the plaintext."""
    return {**get_key(engine, issued.id), "key": issued.plaintext}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise AccountError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def create_user(engine: Engine, actor: Actor, email: str, *, name: str = "",
                role: str = "user", status: str = "active",
                rate_limit: str | None = None) -> dict[str, Any]:
    """A new user (Conflict when the email is taken); the rate limit spec is checked by the
    caller, which knows the limiter's grammar."""
    address = normalize_email(email)
    _check_choice("role", role, ROLES)
    _check_choice("status", status, USER_STATUSES)
    try:
        with session_scope(engine) as session:
            now = utcnow()
            user = User(email=address, name=name, role=role, status=status,
                        rate_limit=rate_limit, ledger_seq=0, created_at=now, updated_at=now)
            session.add(user)
            session.flush()
            audit.write(session, actor, "user.create", "user", user.id,
                        {"email": address, "name": name, "role": role, "status": status,
                         "rate_limit": rate_limit})
            return user_dict(user)
    except IntegrityError as exc:
        raise Conflict(f"a user with email {address} already exists") from exc


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_users(engine: Engine, *, q: str | None = None, role: str | None = None,
                 status: str | None = None, limit: int = 100,
                 offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Users whose email or name contains `q` (case-insensitive, LIKE wildcards taken
    literally), by id; one page and the number matching in all."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValueError("offset must be >= 0")
    conds: list[ColumnElement[bool]] = []
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        # SQLite's lower() is ASCII-only: also match the name as typed.
        conds.append(or_(func.lower(User.email).like(pattern, escape="\\"),
                         func.lower(User.name).like(pattern, escape="\\"),
                         User.name.like(f"%{_escape_like(q)}%", escape="\\")))
    if role is not None:
        _check_choice("role", role, ROLES)
        conds.append(User.role == role)
    if status is not None:
        _check_choice("status", status, USER_STATUSES)
        conds.append(User.status == status)
    with session_scope(engine) as session:
        total = int(session.scalar(select(func.count()).select_from(User).where(*conds)) or 0)
        users = session.scalars(select(User).where(*conds).order_by(User.id)
                                .limit(limit).offset(offset)).all()
        return [user_dict(u) for u in users], total


def get_user(engine: Engine, user_id: int) -> dict[str, Any]:
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        return user_dict(user)


def list_keys(engine: Engine, user_id: int) -> list[dict[str, Any]]:
    """All keys of a user, revoked and expired ones too, oldest first."""
    now = utcnow()
    with session_scope(engine) as session:
        keys = session.scalars(select(ApiKey).where(ApiKey.user_id == user_id)
                               .order_by(ApiKey.id)).all()
        return [key_dict(k, now) for k in keys]


def get_key(engine: Engine, key_id: int) -> dict[str, Any]:
    with session_scope(engine) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no key with id {key_id}")
        return key_dict(key)


def update_user(engine: Engine, actor: Actor, user_id: int,
                changes: dict[str, Any]) -> dict[str, Any]:
    """Apply name/role/status/rate_limit changes; one audit row listing what changed (none
    when nothing did). An admin cannot disable or demote their own account: that would lock
    out the only hand able to undo it."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise AccountError(f"cannot change {', '.join(unknown)}; only {', '.join(UPDATABLE)}")
    if "role" in changes:
        _check_choice("role", changes["role"], ROLES)
    if "status" in changes:
        _check_choice("status", changes["status"], USER_STATUSES)
    with session_scope(engine) as session:
        now = utcnow()
        locked = session.execute(update(User).where(User.id == user_id).values(updated_at=now))
        if getattr(locked, "rowcount", 0) != 1:
            raise NotFound(f"no user with id {user_id}")
        user = session.get(User, user_id, populate_existing=True)
        assert user is not None
        diff = {field: {"from": getattr(user, field), "to": value}
                for field, value in changes.items() if getattr(user, field) != value}
        if user_id == actor.user_id and (diff.get("status", {}).get("to") == "disabled"
                                         or diff.get("role", {}).get("to") == "user"):
            raise Conflict("you cannot disable or demote your own account")
        for field, value in changes.items():
            setattr(user, field, value)
        session.flush()
        if diff:
            audit.write(session, actor, "user.update", "user", user_id, {"changes": diff})
        return user_dict(user)


def _revoke_first(session: Session, key_id: int, now: datetime) -> ApiKey:
    """Revoke as the first statement (it takes the lock), then read the key; a key that was
    already revoked or does not exist leaves the transaction without a write."""
    result = session.execute(update(ApiKey).where(ApiKey.id == key_id,
                                                  ApiKey.revoked_at.is_(None))
                             .values(revoked_at=now))
    key = session.get(ApiKey, key_id, populate_existing=True)
    if key is None:
        raise NotFound(f"no key with id {key_id}")
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(f"key {key_id} is already revoked")
    return key


def revoke_key(engine: Engine, actor: Actor, key_id: int) -> tuple[dict[str, Any], bool]:
    """Revoke a key; (the key, whether this call revoked it). Revoking twice is not an
    error: the second call changes nothing and writes no audit row."""
    now = utcnow()
    try:
        with session_scope(engine) as session:
            key = _revoke_first(session, key_id, now)
            audit.write(session, actor, "key.revoke", "key", key_id,
                        {"user_id": key.user_id, "prefix": key.prefix, "name": key.name})
            return key_dict(key, now), True
    except Conflict:
        return get_key(engine, key_id), False


def issue_key(engine: Engine, actor: Actor, user_id: int, *, name: str = "",
              scopes: list[str], expires_at: datetime | None = None) -> IssuedKey:
    """A new key for the user (NotFound when there is none), audited in its transaction.
    The transaction starts by locking the user's row (a write that changes nothing), which
    also tells whether the user exists, before anything is read."""
    check_scopes(scopes)
    for _ in range(KEY_ATTEMPTS):  # the visible prefix is unique; a clash is astronomically rare
        try:
            with session_scope(engine) as session:
                # updated_at named so that its onupdate does not fire: nothing changes
                locked = session.execute(update(User).where(User.id == user_id)
                                         .values(updated_at=User.updated_at))
                if getattr(locked, "rowcount", 0) != 1:
                    raise NotFound(f"no user with id {user_id}")
                issued = add_key(session, user_id, name=name, scopes=scopes,
                                 expires_at=expires_at)
                audit.write(session, actor, "key.issue", "key", issued.id,
                            {"user_id": user_id, "name": issued.name, "prefix": issued.prefix,
                             "scopes": issued.scopes, "expires_at": issued.expires_at})
                return issued
        except IntegrityError:
            continue
    raise AccountError("could not issue a unique key prefix")


def rotate_key(engine: Engine, actor: Actor, key_id: int) -> RotatedKey:
    """A new key with the old one's user, name, scopes and expiry; the old one revoked in
    the same transaction, so exactly one of two concurrent rotations succeeds."""
    for _ in range(KEY_ATTEMPTS):
        try:
            with session_scope(engine) as session:
                now = utcnow()
                old = _revoke_first(session, key_id, now)
                expires = _aware(old.expires_at)
                if expires is not None and expires <= now:
                    raise Conflict(f"key {key_id} has expired; issue a new key instead")
                issued = add_key(session, old.user_id, name=old.name,
                                 scopes=list(old.scopes or []), expires_at=expires,
                                 created_at=now)
                audit.write(session, actor, "key.rotate", "key", key_id,
                            {"user_id": old.user_id, "old_prefix": old.prefix,
                             "new_key_id": issued.id, "new_prefix": issued.prefix,
                             "scopes": issued.scopes, "expires_at": expires})
                return RotatedKey(issued, key_id)
        except IntegrityError:
            continue
    raise AccountError("could not issue a unique key prefix")


def change_credits(engine: Engine, actor: Actor, user_id: int, amount: int, *, reason: str,
                   expires_at: datetime | None = None,
                   request_id: str = "") -> dict[str, Any]:
    """Grant (amount > 0, optionally expiring) or take back (amount < 0) credits, and the
    audit row, in one transaction: the ledger's user lock is its first statement. Raises what
    the ledger raises (UnknownUser, InsufficientCredits, TypeError/ValueError) with nothing
    written."""
    with session_scope(engine) as session:
        conn = session.connection()
        grant_id: int | None = None
        if amount > 0:
            grant_id = ledger.grant(engine, user_id, amount, reason=reason,
                                    expires_at=expires_at, request_id=request_id, conn=conn)
            entry_id = session.scalar(select(LedgerEntry.id).where(
                LedgerEntry.grant_id == grant_id, LedgerEntry.kind == "grant"))
        else:
            if expires_at is not None:
                raise ValueError("only grants (a positive amount) can expire")
            entry_id = ledger.adjust(engine, user_id, amount, reason=reason,
                                     request_id=request_id, conn=conn)
        kind = "grant" if amount > 0 else "adjustment"
        data = {"user_id": user_id, "kind": kind, "amount": amount, "reason": reason,
                "expires_at": _iso(expires_at), "grant_id": grant_id,
                "ledger_entry_id": entry_id,
                "balance": ledger.balance(engine, user_id, conn=conn)}
        audit.write(session, actor, "credits.grant" if amount > 0 else "credits.adjust",
                    "user", user_id, {k: v for k, v in data.items() if k != "user_id"})
        return data
