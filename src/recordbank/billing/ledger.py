"""The credit ledger: grants, holds, settlements and releases, one transaction each.

Invariant, per user, after every commit: sum(ledger.amount) == sum(grant.remaining), and once
the expiry rows of expired grants are written that is also balance() (the remaining credits of
unexpired grants). Every change of `remaining` is written together with a ledger row of the
same amount, so the ledger alone explains and recomputes every balance.

Locking: every writing transaction starts with UPDATE users SET ledger_seq = ledger_seq + 1.
On PostgreSQL that is the user's row lock, held to commit; READ COMMITTED then lets every
later statement see what the previous lock holder committed. On SQLite (pysqlite legacy
transactions, WAL, busy_timeout) a write as the first statement takes the database write lock
up front; a transaction that read first and wrote later could fail with SQLITE_BUSY when it
tries to upgrade. So nothing - not even the hold's owner - is read before that UPDATE.

Spending (holds, negative adjustments) takes from the grant that expires first, grants without
expiry last, ties by age. A settlement gives the unused part back in reverse allocation order:
the charge is taken to have used the soonest-expiring credits, the refund goes to the grants
that last longest. Credits returned to a grant that has expired meanwhile expire at once (an
'expiry' row right after the return), so they never become spendable again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, func, select

from recordbank.billing.wallet import (
    CLOSE_HOLD,
    INSERT_GRANT,
    INSERT_HOLD,
    LOCK_HOLD_OWNER,
    LOCK_USER,
    OPEN_HOLDS,
    READ_HOLD,
    USER_EXISTS,
    InsufficientCredits,
    Wallet,
    holds_table,
    inserted_id,
    ledger_table,
    utc,
    write_entry,
)
from recordbank.db.models import utcnow

__all__ = ["CreditSummary", "Hold", "HoldClosed", "InsufficientCredits", "UnknownHold",
           "UnknownUser", "adjust", "balance", "expire_grants", "grant", "hold", "ledger_sum",
           "refund", "release", "release_stale_holds", "settle", "summary"]

MAX_CREDITS = 2**62  # far beyond any real amount; keeps sums inside BIGINT
_BIGINT = 2**63 - 1


class UnknownUser(LookupError):
    """No user with this id."""


class UnknownHold(LookupError):
    """No hold with this id."""


class HoldClosed(Exception):
    """The hold was already settled or released: it cannot be closed twice."""


@dataclass
class Hold:
    id: int
    user_id: int
    amount: int
    balance_after: int


@dataclass
class CreditSummary:
    balance: int
    held: int
    open_holds: list[dict[str, Any]]
    grants: list[dict[str, Any]]


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime, got {type(now).__name__}")
    return cast(datetime, utc(now))


def _count(name: str, value: object, *, minimum: int, maximum: int = MAX_CREDITS) -> int:
    """An int in range; bool is refused although it is an int subclass."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _text(name: str, value: object, *, required: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"a {name} is required")
    return value


@contextmanager
def _transaction(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    """A transaction of our own, or the caller's open one: the change then commits or rolls
    back with whatever else the caller writes in it (an admin's audit row). The caller's
    transaction must not have run anything yet, so that the user lock stays its first
    statement (see the module docstring)."""
    if conn is not None:
        yield conn
        return
    with engine.begin() as own:
        yield own


def _lock_user(conn: Connection, user_id: int) -> None:
    """The first statement of every writing transaction (see the module docstring)."""
    uid = _count("user_id", user_id, minimum=-_BIGINT, maximum=_BIGINT)
    result = conn.execute(LOCK_USER, {"uid": uid})
    if result.rowcount != 1:
        raise UnknownUser(f"no user {user_id}")


def _lock_hold(conn: Connection, hold_id: int) -> Row[Any]:
    """Lock the hold's owner without reading first, then read the hold under the lock."""
    hid = _count("hold_id", hold_id, minimum=-_BIGINT, maximum=_BIGINT)
    result = conn.execute(LOCK_HOLD_OWNER, {"hid": hid})
    if result.rowcount != 1:
        raise UnknownHold(f"no hold {hold_id}")
    return conn.execute(READ_HOLD, {"hid": hid}).one()


def _new_grant(conn: Connection, user_id: int, amount: int, *, kind: str, reason: str,
               now: datetime, expires_at: datetime | None = None,
               request_id: str = "") -> tuple[int, int]:
    """A new grant and its ledger row; (grant id, ledger row id)."""
    result = conn.execute(INSERT_GRANT, dict(
        user_id=user_id, amount=amount, remaining=amount, expires_at=expires_at,
        reason=reason, created_at=now))
    grant_id = inserted_id(result)
    entry_id = write_entry(conn, user_id, kind, amount, reason=reason, now=now, grant_id=grant_id,
                      request_id=request_id)
    return grant_id, entry_id


def _credit(engine: Engine, user_id: int, amount: int, *, kind: str, reason: str,
            expires_at: datetime | None, request_id: str, now: datetime | None,
            conn: Connection | None = None) -> tuple[int, int]:
    """Validate, lock, then add a grant; (grant id, ledger row id)."""
    _count("amount", amount, minimum=1)
    reason, request_id = _text("reason", reason, required=True), _text("request_id", request_id)
    at = _now(now)
    if expires_at is not None and not isinstance(expires_at, datetime):
        raise TypeError(f"expires_at must be a datetime, got {type(expires_at).__name__}")
    expiry = utc(expires_at)
    if expiry is not None and expiry <= at:
        raise ValueError(f"expires_at {expiry.isoformat()} is not in the future")
    with _transaction(engine, conn) as tx:
        _lock_user(tx, user_id)
        Wallet(tx, user_id, at).expire()
        return _new_grant(tx, user_id, amount, kind=kind, reason=reason, now=at,
                          expires_at=expiry, request_id=request_id)


def grant(engine: Engine, user_id: int, amount: int, *, reason: str,
          expires_at: datetime | None = None, request_id: str = "",
          now: datetime | None = None, conn: Connection | None = None) -> int:
    """Add credits (amount > 0), optionally expiring; returns the grant id.

    A naive `expires_at` is taken as UTC; one not after `now` is refused, since such a grant
    could never be spent. With `conn` (e.g. `session.connection()`) the grant is written in
    that transaction and commits with it; the caller commits.
    """
    return _credit(engine, user_id, amount, kind="grant", reason=reason, expires_at=expires_at,
                   request_id=request_id, now=now, conn=conn)[0]


def adjust(engine: Engine, user_id: int, amount: int, *, reason: str, request_id: str = "",
           now: datetime | None = None, conn: Connection | None = None) -> int:
    """A signed correction by an operator; returns the ledger row id.

    Positive: a new non-expiring grant. Negative: taken from grants like spending, never below
    zero (InsufficientCredits, nothing written). `conn`: as for grant().
    """
    _count("amount", amount, minimum=-MAX_CREDITS)
    if amount >= 0:
        return _credit(engine, user_id, amount, kind="adjustment", reason=reason,
                       expires_at=None, request_id=request_id, now=now, conn=conn)[1]
    reason, request_id = _text("reason", reason, required=True), _text("request_id", request_id)
    at = _now(now)
    with _transaction(engine, conn) as tx:
        _lock_user(tx, user_id)
        wallet = Wallet(tx, user_id, at)
        wallet.expire()
        wallet.take(-amount)
        return write_entry(tx, user_id, "adjustment", amount, reason=reason, now=at,
                           request_id=request_id)


def refund(engine: Engine, user_id: int, amount: int, *, reason: str, request_id: str = "",
           now: datetime | None = None) -> int:
    """Give credits back as a new non-expiring grant (ledger kind 'refund'); the grant id."""
    return _credit(engine, user_id, amount, kind="refund", reason=reason, expires_at=None,
                   request_id=request_id, now=now)[0]


def hold(engine: Engine, user_id: int, amount: int, *, request_id: str, endpoint: str,
         reason: str = "", now: datetime | None = None) -> Hold:
    """Reserve a query's maximum cost before it runs, or raise InsufficientCredits.

    The check and the reservation happen under the user's lock, so parallel requests cannot
    both spend the same credits. On InsufficientCredits the transaction rolls back: no hold,
    no ledger row, not even the lock counter bump survives.
    """
    _count("amount", amount, minimum=0)
    request_id, endpoint = _text("request_id", request_id), _text("endpoint", endpoint)
    reason = _text("reason", reason)
    at = _now(now)
    with engine.begin() as conn:
        _lock_user(conn, user_id)
        wallet = Wallet(conn, user_id, at)
        wallet.expire()
        allocations = wallet.take(amount)
        result = conn.execute(INSERT_HOLD, dict(
            user_id=user_id, amount=amount, charged=None, status="open",
            allocations=allocations, request_id=request_id[:64], endpoint=endpoint[:200],
            created_at=at, closed_at=None))
        hold_id = inserted_id(result)
        write_entry(conn, user_id, "hold", -amount, hold_id=hold_id, now=at,
               reason=reason or f"hold for {endpoint}", request_id=request_id)
        return Hold(id=hold_id, user_id=user_id, amount=amount,
                    balance_after=wallet.available())


def _close(engine: Engine, hold_id: int, *, charged: int, kind: str, reason: str,
           now: datetime | None) -> int:
    """Settle or release in one transaction: return the unused credits, close the hold."""
    at = _now(now)
    with engine.begin() as conn:
        row = _lock_hold(conn, hold_id)
        if row.status != "open":
            raise HoldClosed(f"hold {hold_id} is already {row.status}")
        wallet = Wallet(conn, row.user_id, at, also=(g for g, _ in row.allocations))
        wallet.expire()  # what expired meanwhile, before anything comes back
        charged = min(charged, row.amount)
        unused = row.amount - charged
        wallet.give_back(row.allocations, unused)
        conn.execute(CLOSE_HOLD, {"hid": hold_id, "charged": charged, "closed_at": at,
                                   "status": "settled" if kind == "settlement" else "released"})
        if kind == "settlement":
            reason = f"charged {charged} of {row.amount} held" + (f"; {reason}" if reason else "")
        write_entry(conn, row.user_id, kind, unused, hold_id=hold_id, reason=reason, now=at,
               request_id=row.request_id)
        wallet.expire()  # credits given back to an expired grant expire now too
        return wallet.available()


def settle(engine: Engine, hold_id: int, charged: int, *, now: datetime | None = None) -> int:
    """Charge the real cost and give back the rest of the hold; returns the balance after.

    A charge above the hold is clipped to it (the hold is the maximum the user agreed to, and
    a query stopped at its time limit can overrun it slightly); a negative one is a bug.
    """
    _count("charged", charged, minimum=0, maximum=_BIGINT)
    return _close(engine, hold_id, charged=charged, kind="settlement", reason="", now=now)


def release(engine: Engine, hold_id: int, *, reason: str, now: datetime | None = None) -> int:
    """Give back the whole hold (the request failed on our side); returns the balance after."""
    reason = _text("reason", reason, required=True)
    return _close(engine, hold_id, charged=0, kind="release", reason=reason, now=now)


def release_stale_holds(engine: Engine, *, older_than_seconds: int,
                        now: datetime | None = None) -> int:
    """Release holds left open by a crashed process; returns how many were released.

    Each hold is released in its own transaction; one settled meanwhile by a slow but live
    request is skipped, so choose `older_than_seconds` above the longest request.
    """
    at = _now(now)
    age = _count("older_than_seconds", older_than_seconds, minimum=0, maximum=10**9)
    cutoff = at - timedelta(seconds=age)
    with engine.connect() as conn:
        ids = conn.execute(select(holds_table.c.id).where(
            holds_table.c.status == "open", holds_table.c.created_at < cutoff)
            .order_by(holds_table.c.id)).scalars().all()
    released = 0
    for hold_id in ids:
        try:
            release(engine, hold_id, now=at,
                    reason=f"stale: open for more than {older_than_seconds} s")
        except HoldClosed:
            continue
        released += 1
    return released


def _check_user(conn: Connection, user_id: int) -> None:
    uid = _count("user_id", user_id, minimum=-_BIGINT, maximum=_BIGINT)
    row = conn.execute(USER_EXISTS, {"uid": uid}).first()
    if row is None:
        raise UnknownUser(f"no user {user_id}")


def balance(engine: Engine, user_id: int, *, now: datetime | None = None,
            conn: Connection | None = None) -> int:
    """Spendable credits: the remaining credits of grants unexpired at `now`. Reads only
    (in the caller's transaction with `conn`: a balance that includes its uncommitted change)."""
    with nullcontext(conn) if conn is not None else engine.connect() as tx:
        _check_user(tx, user_id)
        return Wallet(tx, user_id, _now(now)).available()


def expire_grants(engine: Engine, user_id: int, *, now: datetime | None = None) -> int:
    """Write the expiry rows that are due; returns the credits that expired."""
    with engine.begin() as conn:
        _lock_user(conn, user_id)
        return Wallet(conn, user_id, _now(now)).expire()


def ledger_sum(engine: Engine, user_id: int) -> int:
    with engine.connect() as conn:
        total = conn.execute(select(func.coalesce(func.sum(ledger_table.c.amount), 0))
                             .where(ledger_table.c.user_id == user_id)).scalar_one()
        return int(total)


def summary(engine: Engine, user_id: int, *, now: datetime | None = None) -> CreditSummary:
    """Balance, open holds and spendable grants (in spending order), for display.

    The reads are separate statements, so a concurrent hold can make `held` and `balance`
    momentarily disagree by that hold; the ledger itself is never inconsistent.
    """
    at = _now(now)
    with engine.connect() as conn:
        _check_user(conn, user_id)
        holds = conn.execute(OPEN_HOLDS, {"uid": user_id}).all()
        live = Wallet(conn, user_id, at).live()
    grants: list[dict[str, Any]] = [{"id": g.id, "amount": g.amount, "remaining": g.remaining,
               "expires_at": g.expires_at, "reason": g.reason,
               "created_at": g.created_at} for g in live]
    open_holds = [{"id": h.id, "amount": h.amount, "request_id": h.request_id,
                   "endpoint": h.endpoint, "created_at": utc(h.created_at)} for h in holds]
    return CreditSummary(balance=sum(g.remaining for g in live),
                         held=sum(h["amount"] for h in open_holds),
                         open_holds=open_holds, grants=grants)
