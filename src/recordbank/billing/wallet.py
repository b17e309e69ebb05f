"""The grants of one user inside a ledger transaction, and the SQL the ledger runs.

Split from ledger.py, which holds the public operations (grant, hold, settle, ...): this module
is the mechanics under them: statements built once, and `Wallet`, the user's grants read once
under the user's lock with every change written through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, or_, select, text, update
from sqlalchemy.engine import CursorResult

from recordbank.billing.models import CreditGrant, CreditHold, LedgerEntry

grants_table = cast(Table, CreditGrant.__table__)
holds_table = cast(Table, CreditHold.__table__)
ledger_table = cast(Table, LedgerEntry.__table__)

# Statements built once: building a Core statement per call cost more than running it
# (a hold + settle pair spent ~3 of its 4 ms in SQLAlchemy's statement construction).
LOCK_USER = text("UPDATE users SET ledger_seq = ledger_seq + 1 WHERE id = :uid")
LOCK_HOLD_OWNER = text("UPDATE users SET ledger_seq = ledger_seq + 1 WHERE id = "
                       "(SELECT user_id FROM credit_holds WHERE id = :hid)")
READ_HOLD = select(holds_table).where(holds_table.c.id == bindparam("hid"))
INSERT_LEDGER = insert(ledger_table)
INSERT_GRANT = insert(grants_table)
INSERT_HOLD = insert(holds_table)
CLOSE_HOLD = update(holds_table).where(holds_table.c.id == bindparam("hid")).values(
    status=bindparam("status"), charged=bindparam("charged"), closed_at=bindparam("closed_at"))
CHANGE_GRANT = update(grants_table).where(grants_table.c.id == bindparam("gid")).values(
    remaining=grants_table.c.remaining + bindparam("delta", type_=grants_table.c.remaining.type))
_g = grants_table.c
GRANT_COLUMNS = (_g.id, _g.remaining, _g.expires_at, _g.amount, _g.reason, _g.created_at)
OPEN_GRANTS = select(*GRANT_COLUMNS).where(_g.user_id == bindparam("uid"), _g.remaining > 0)
OPEN_OR_NAMED_GRANTS = select(*GRANT_COLUMNS).where(
    _g.user_id == bindparam("uid"),
    or_(_g.remaining > 0, _g.id.in_(bindparam("ids", expanding=True))))
USER_EXISTS = text("SELECT 1 FROM users WHERE id = :uid")
_h = holds_table.c
OPEN_HOLDS = (select(_h.id, _h.amount, _h.request_id, _h.endpoint, _h.created_at)
              .where(_h.user_id == bindparam("uid"), _h.status == "open").order_by(_h.id))


class InsufficientCredits(Exception):
    """The balance cannot cover the amount; nothing was written."""

    def __init__(self, required: int, available: int) -> None:
        super().__init__(f"Required: {required}, Available: {available}")
        self.required = required
        self.available = available


@dataclass
class Grant:
    id: int
    remaining: int
    expires_at: datetime | None  # aware UTC
    amount: int
    reason: str
    created_at: datetime | None


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC. SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and cast(datetime, utc(expires_at)) <= now


def inserted_id(result: CursorResult[Any]) -> int:
    return int(cast(Any, result.inserted_primary_key)[0])


def write_entry(conn: Connection, user_id: int, kind: str, amount: int, *, reason: str,
           now: datetime, grant_id: int | None = None, hold_id: int | None = None,
           request_id: str = "") -> int:
    result = conn.execute(INSERT_LEDGER, dict(
        user_id=user_id, kind=kind, amount=amount, grant_id=grant_id, hold_id=hold_id,
        reason=reason, request_id=request_id[:64], created_at=now))
    return inserted_id(result)


class Wallet:
    """A user's grants, read once under the user's lock; every change is written through.

    One read per transaction instead of one per step: on PostgreSQL every statement is a
    round trip, and a hold or settlement used to read the same grants three times.
    """

    def __init__(self, conn: Connection, user_id: int, now: datetime,
                 also: Iterable[int] = ()) -> None:
        self.conn, self.user_id, self.now = conn, user_id, now
        extra = sorted(set(also))  # grants a hold took from: maybe empty, but get credits back
        rows = (conn.execute(OPEN_OR_NAMED_GRANTS, {"uid": user_id, "ids": extra}) if extra
                else conn.execute(OPEN_GRANTS, {"uid": user_id})).all()
        far = datetime.max.replace(tzinfo=UTC)
        self.grants = sorted(
            (Grant(r.id, r.remaining, utc(r.expires_at), r.amount, r.reason,
                    utc(r.created_at)) for r in rows),
            key=lambda g: (g.expires_at or far, g.id))
        self._by_id = {g.id: g for g in self.grants}

    def live(self) -> list[Grant]:
        """Spendable grants, in spending order: soonest expiry first, no expiry last."""
        return [g for g in self.grants if g.remaining > 0 and not expired(g.expires_at, self.now)]

    def available(self) -> int:
        return sum(g.remaining for g in self.live())

    def _change(self, grant: Grant, delta: int) -> None:
        self.conn.execute(CHANGE_GRANT, {"gid": grant.id, "delta": delta})
        grant.remaining += delta

    def expire(self) -> int:
        """Write an 'expiry' row for what is left of each expired grant; the spent part stays."""
        total = 0
        for g in self.grants:
            if g.remaining > 0 and expired(g.expires_at, self.now):
                left = g.remaining
                self._change(g, -left)
                write_entry(self.conn, self.user_id, "expiry", -left, grant_id=g.id, now=self.now,
                       reason=f"grant {g.id} expired at {g.expires_at:%Y-%m-%dT%H:%M:%SZ}")
                total += left
        return total

    def take(self, amount: int) -> list[list[int]]:
        """Take `amount` from unexpired grants in spending order; [[grant_id, credits], ...]."""
        live = self.live()
        available = sum(g.remaining for g in live)
        if available < amount:
            raise InsufficientCredits(amount, available)
        allocations: list[list[int]] = []
        left = amount
        for g in live:
            if (part := min(left, g.remaining)) == 0:
                break
            self._change(g, -part)
            allocations.append([g.id, part])
            left -= part
        return allocations

    def give_back(self, allocations: list[list[int]], amount: int) -> None:
        """Return `amount` to the grants a hold took from, last allocation first."""
        left = amount
        for grant_id, taken in reversed(allocations):
            if (part := min(left, taken)) == 0:
                break
            grant = self._by_id.get(grant_id)
            if grant is None:
                raise RuntimeError(f"hold allocation names grant {grant_id}, not the user's")
            self._change(grant, part)
            left -= part
        if left:  # allocations always cover the hold; anything else is a corrupted hold row
            raise RuntimeError(f"hold allocations {allocations} do not cover {amount}")
