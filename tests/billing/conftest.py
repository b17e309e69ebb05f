"""Fixtures for the credit ledger: a migrated engine per database kind, users, and a checker that
reads one consistent snapshot of a user's credits and verifies every ledger invariant."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from recordbank.accounts.models import User
from recordbank.billing.models import CreditGrant, CreditHold, LedgerEntry
from recordbank.config import Settings
from recordbank.db.session import get_engine, session_scope

_emails = itertools.count()


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(Settings(database_url=database_url).resolved_database_url())


def create_user(engine: Engine) -> int:
    with session_scope(engine) as session:
        user = User(email=f"ledger-{next(_emails)}@example.test", name="ledger test")
        session.add(user)
        session.flush()
        return user.id


@pytest.fixture
def make_user(engine: Engine) -> Callable[[], int]:
    return lambda: create_user(engine)


@pytest.fixture
def user(engine: Engine) -> int:
    return create_user(engine)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def snapshot(engine: Engine, user_id: int) -> dict[str, Any]:
    """Everything about one user's credits, read in ONE transaction (a consistent snapshot:
    REPEATABLE READ on PostgreSQL, one WAL read transaction on SQLite)."""
    with engine.connect() as raw:
        if engine.dialect.name == "postgresql":
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
        else:
            conn = raw
            conn.exec_driver_sql("BEGIN")
        try:
            ledger = conn.execute(select(LedgerEntry.kind, LedgerEntry.amount,
                                         LedgerEntry.grant_id, LedgerEntry.hold_id)
                                  .where(LedgerEntry.user_id == user_id)
                                  .order_by(LedgerEntry.id)).all()
            grants = conn.execute(select(CreditGrant.id, CreditGrant.amount,
                                         CreditGrant.remaining, CreditGrant.expires_at)
                                  .where(CreditGrant.user_id == user_id)).all()
            holds = conn.execute(select(CreditHold.id, CreditHold.amount, CreditHold.status,
                                        CreditHold.charged, CreditHold.allocations,
                                        CreditHold.created_at)
                                 .where(CreditHold.user_id == user_id)
                                 .order_by(CreditHold.id)).all()
            seq = conn.execute(text("SELECT ledger_seq FROM users WHERE id = :u"),
                               {"u": user_id}).scalar_one()
        finally:
            conn.rollback()
    return {"ledger": ledger, "grants": {g.id: g for g in grants}, "holds": holds, "seq": seq}


def check_snapshot(snap: dict[str, Any]) -> None:
    """The invariants that hold after every commit, whatever ran concurrently."""
    ledger, grants, holds = snap["ledger"], snap["grants"], snap["holds"]
    by_kind: dict[str, int] = {}
    for row in ledger:
        by_kind[row.kind] = by_kind.get(row.kind, 0) + row.amount
    total = sum(row.amount for row in ledger)
    assert total == sum(g.remaining for g in grants.values()), "ledger != sum(remaining)"
    for g in grants.values():
        assert 0 <= g.remaining <= g.amount, f"grant {g.id}: remaining {g.remaining}"
    credits_in = sum(g.amount for g in grants.values())
    assert credits_in == sum(r.amount for r in ledger
                             if r.kind in ("grant", "refund")
                             or (r.kind == "adjustment" and r.grant_id is not None))
    assert -by_kind.get("hold", 0) == sum(h.amount for h in holds)
    assert by_kind.get("release", 0) == sum(h.amount for h in holds if h.status == "released")
    assert by_kind.get("settlement", 0) == sum(h.amount - h.charged for h in holds
                                               if h.status == "settled")
    assert by_kind.get("expiry", 0) <= 0
    for h in holds:
        assert h.status in ("open", "settled", "released")
        assert sum(part for _, part in h.allocations) == h.amount, f"hold {h.id} allocations"
        assert (h.charged is None) == (h.status == "open")
        if h.charged is not None:
            assert 0 <= h.charged <= h.amount
        for grant_id, _ in h.allocations:  # never spent from a grant already expired
            expires_at, created_at = _aware(grants[grant_id].expires_at), _aware(h.created_at)
            assert created_at is not None
            assert expires_at is None or expires_at > created_at
    spent = sum(h.charged for h in holds if h.charged is not None)
    held = sum(h.amount for h in holds if h.status == "open")
    debits = -sum(r.amount for r in ledger if r.kind == "adjustment" and r.grant_id is None)
    assert credits_in - spent - held - debits + by_kind.get("expiry", 0) == total


@pytest.fixture
def invariants(engine: Engine) -> Callable[[int], dict[str, Any]]:
    """Check a user's invariants now; returns the snapshot for further assertions."""

    def run(user_id: int) -> dict[str, Any]:
        snap = snapshot(engine, user_id)
        check_snapshot(snap)
        return snap

    return run
