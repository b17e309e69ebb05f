"""Creating users and issuing, finding and revoking their keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recordbank.accounts.keys import generate_key, hash_key, visible_prefix
from recordbank.accounts.models import ROLES, SCOPES, USER_STATUSES, ApiKey, User
from recordbank.db.session import session_scope

DEFAULT_SCOPES = ("query", "export")
KEY_ATTEMPTS = 5


class AccountError(ValueError):
    """A request about accounts that cannot be done (duplicate email, unknown user…)."""


@dataclass(frozen=True)
class IssuedKey:
    """The only moment the plaintext exists outside the caller's hands."""

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: list[str]
    plaintext: str
    expires_at: datetime | None


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def create_user(engine: Engine, email: str, *, name: str = "", role: str = "user",
                rate_limit: str | None = None) -> User:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise AccountError(f"not an email address: {email!r}")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    try:
        with session_scope(engine) as session:
            user = User(email=email, name=name, role=role, status="active",
                        rate_limit=rate_limit, ledger_seq=0)
            session.add(user)
            session.flush()
            return user
    except IntegrityError as exc:
        raise AccountError(f"a user with email {email} already exists") from exc


def find_user(engine: Engine, ref: str | int) -> User:
    """By id or email: the CLI takes either."""
    with session_scope(engine) as session:
        if isinstance(ref, int) or str(ref).isdigit():
            user = session.get(User, int(ref))
        else:
            user = session.scalar(select(User).where(User.email == str(ref).strip().lower()))
        if user is None:
            raise AccountError(f"no such user: {ref}")
        return user


def set_user_status(engine: Engine, user_id: int, status: str) -> None:
    if status not in USER_STATUSES:
        raise AccountError(f"status must be one of {', '.join(USER_STATUSES)}")
    with session_scope(engine) as session:
        session.execute(update(User).where(User.id == user_id).values(status=status))


def check_scopes(scopes: tuple[str, ...] | list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise AccountError(f"unknown scopes {unknown}; valid: {', '.join(SCOPES)}")
    return list(scopes)


def add_key(session: Session, user_id: int, *, name: str = "",
            scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
            expires_at: datetime | None = None, created_at: datetime | None = None) -> IssuedKey:
    """A new key in the caller's transaction (flushed: it has its id), so that whatever else
    the caller writes (an audit row, the revocation of the key it replaces) commits with it.
    A clash of the visible prefix raises IntegrityError and spoils that transaction: callers
    retry in a new one."""
    plaintext = generate_key()
    key = ApiKey(user_id=user_id, name=name, prefix=visible_prefix(plaintext),
                 key_hash=hash_key(plaintext), scopes=check_scopes(scopes),
                 expires_at=expires_at)
    if created_at is not None:
        key.created_at = created_at
    session.add(key)
    session.flush()
    return IssuedKey(key.id, user_id, name, key.prefix, list(key.scopes), plaintext,
                     expires_at)


def issue_key(engine: Engine, user_id: int, *, name: str = "",
              scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
              expires_at: datetime | None = None) -> IssuedKey:
    check_scopes(scopes)
    with session_scope(engine) as session:
        if session.get(User, user_id) is None:
            raise AccountError(f"no such user: {user_id}")
    for _ in range(KEY_ATTEMPTS):  # the visible prefix is unique; a clash is astronomically rare
        try:
            with session_scope(engine) as session:
                return add_key(session, user_id, name=name, scopes=scopes,
                               expires_at=expires_at)
        except IntegrityError:
            continue
    raise AccountError("could not issue a unique key prefix")


def revoke_key(engine: Engine, key_id: int) -> None:
    with session_scope(engine) as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise AccountError(f"no such key: {key_id}")
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)


@dataclass(frozen=True)
class KeyOwner:
    """What authentication needs of a key and its user, detached from any session."""

    key_id: int
    key_hash: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    user_id: int
    role: str
    user_status: str
    rate_limit: str | None


def key_by_prefix(engine: Engine, prefix: str) -> KeyOwner | None:
    with session_scope(engine) as session:
        row = session.execute(
            select(ApiKey.id, ApiKey.key_hash, ApiKey.scopes, ApiKey.expires_at,
                   ApiKey.revoked_at, ApiKey.last_used_at, User.id, User.role, User.status,
                   User.rate_limit)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.prefix == prefix)
        ).first()
    if row is None:
        return None
    return KeyOwner(row[0], row[1], tuple(row[2] or ()), _aware(row[3]), _aware(row[4]),
                    _aware(row[5]), row[6], row[7], row[8], row[9])


def touch_key(engine: Engine, key_id: int, when: datetime) -> None:
    with session_scope(engine) as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
