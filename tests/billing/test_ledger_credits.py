"""The credit ledger, one request at a time: holds, settlements, releases, expiry order, bad
input. Time is passed explicitly (`now=`) so expiry is tested without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from recordbank.billing import ledger
from recordbank.billing.ledger import HoldClosed, InsufficientCredits, UnknownHold, UnknownUser
from recordbank.billing.models import CreditGrant, CreditHold, LedgerEntry

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
L: Any = ledger  # untyped alias: the bad-input table passes wrong types on purpose
Check = Callable[[int], dict[str, Any]]


def _kinds(engine: Engine, user_id: int) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(LedgerEntry.kind, LedgerEntry.amount)
                            .where(LedgerEntry.user_id == user_id)
                            .order_by(LedgerEntry.id)).all()
    return [(r.kind, r.amount) for r in rows]


def _remaining(engine: Engine, grant_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(CreditGrant.remaining)
                                .where(CreditGrant.id == grant_id)).scalar_one())


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                     for t in (CreditHold, LedgerEntry, CreditGrant))  # type: ignore[return-value]


def test_hold_settle_release_round_trip(engine: Engine, user: int, invariants: Check) -> None:
    ledger.grant(engine, user, 100, reason="signup", request_id="r0")
    h = ledger.hold(engine, user, 30, request_id="r1", endpoint="/v1/records")
    assert (h.user_id, h.amount, h.balance_after) == (user, 30, 70)
    assert ledger.balance(engine, user) == 70
    assert ledger.settle(engine, h.id, 12) == 88
    failed = ledger.hold(engine, user, 40, request_id="r2", endpoint="/v1/records")
    assert ledger.release(engine, failed.id, reason="store unavailable") == 88
    assert ledger.balance(engine, user) == ledger.ledger_sum(engine, user) == 88
    assert _kinds(engine, user) == [("grant", 100), ("hold", -30), ("settlement", 18),
                                    ("hold", -40), ("release", 40)]
    snap = invariants(user)
    assert [(x.status, x.charged) for x in snap["holds"]] == [("settled", 12), ("released", 0)]
    with engine.connect() as conn:
        reasons = conn.execute(select(LedgerEntry.reason, LedgerEntry.request_id)
                               .where(LedgerEntry.kind.in_(("settlement", "release")))
                               .order_by(LedgerEntry.id)).all()
    assert reasons[0].reason.startswith("charged 12 of 30") and reasons[0].request_id == "r1"
    assert reasons[1].reason == "store unavailable" and reasons[1].request_id == "r2"


def test_insufficient_credits_creates_nothing(engine: Engine, user: int, invariants: Check
                                              ) -> None:
    ledger.grant(engine, user, 10, reason="signup")
    seq_before, before = invariants(user)["seq"], _counts(engine)
    with pytest.raises(InsufficientCredits) as info:
        ledger.hold(engine, user, 15, request_id="r", endpoint="/v1/records")
    assert str(info.value) == "Required: 15, Available: 10"
    assert (info.value.required, info.value.available) == (15, 10)
    assert _counts(engine) == before
    assert invariants(user)["seq"] == seq_before  # even the lock counter bump rolled back
    assert ledger.hold(engine, user, 10, request_id="r", endpoint="e").balance_after == 0
    with pytest.raises(InsufficientCredits, match="^Required: 1, Available: 0$"):
        ledger.hold(engine, user, 1, request_id="r", endpoint="e")


def test_zero_hold_and_full_charge(engine: Engine, user: int, invariants: Check) -> None:
    ledger.grant(engine, user, 5, reason="signup")
    empty = ledger.hold(engine, user, 0, request_id="r", endpoint="e")
    assert ledger.settle(engine, empty.id, 0) == 5
    full = ledger.hold(engine, user, 5, request_id="r", endpoint="e")
    assert ledger.settle(engine, full.id, 5) == 0
    assert _kinds(engine, user)[-1] == ("settlement", 0)  # the charge is still recorded
    invariants(user)


def test_charge_above_hold_is_clipped(engine: Engine, user: int, invariants: Check) -> None:
    ledger.grant(engine, user, 50, reason="signup")
    h = ledger.hold(engine, user, 11, request_id="r", endpoint="e")
    assert ledger.settle(engine, h.id, 12) == 39
    assert invariants(user)["holds"][0].charged == 11


def test_closed_and_unknown_holds(engine: Engine, user: int, invariants: Check) -> None:
    ledger.grant(engine, user, 50, reason="signup")
    h = ledger.hold(engine, user, 10, request_id="r", endpoint="e")
    ledger.settle(engine, h.id, 3)
    for close in (lambda: ledger.settle(engine, h.id, 3),
                  lambda: ledger.release(engine, h.id, reason="again")):
        with pytest.raises(HoldClosed, match="already settled"):
            close()
    r = ledger.hold(engine, user, 10, request_id="r", endpoint="e")
    ledger.release(engine, r.id, reason="failed")
    with pytest.raises(HoldClosed, match="already released"):
        ledger.settle(engine, r.id, 0)
    with pytest.raises(UnknownHold):
        ledger.settle(engine, 999_999, 1)
    with pytest.raises(UnknownHold):
        ledger.release(engine, -1, reason="x")
    assert ledger.balance(engine, user) == 47
    invariants(user)


def test_unknown_user_everywhere(engine: Engine, user: int) -> None:
    calls: list[Callable[[], object]] = [
        lambda: ledger.grant(engine, 424242, 1, reason="x"),
        lambda: ledger.adjust(engine, 424242, 1, reason="x"),
        lambda: ledger.adjust(engine, 424242, -1, reason="x"),
        lambda: ledger.refund(engine, 424242, 1, reason="x"),
        lambda: ledger.hold(engine, 424242, 1, request_id="r", endpoint="e"),
        lambda: ledger.balance(engine, 424242),
        lambda: ledger.expire_grants(engine, 424242),
        lambda: ledger.summary(engine, 424242),
    ]
    for call in calls:
        with pytest.raises(UnknownUser):
            call()
    assert ledger.ledger_sum(engine, 424242) == 0
    assert _counts(engine) == (0, 0, 0)


def test_spending_takes_soonest_expiring_grant_first(engine: Engine, user: int,
                                                     invariants: Check) -> None:
    forever = ledger.grant(engine, user, 10, reason="no expiry", now=T0)
    late = ledger.grant(engine, user, 10, reason="late", expires_at=T0 + timedelta(days=2),
                        now=T0)
    soon = ledger.grant(engine, user, 10, reason="soon", expires_at=T0 + timedelta(days=1),
                        now=T0)
    h = ledger.hold(engine, user, 25, request_id="r", endpoint="e", now=T0)
    assert [_remaining(engine, g) for g in (soon, late, forever)] == [0, 0, 5]
    assert invariants(user)["holds"][0].allocations == [[soon, 10], [late, 10], [forever, 5]]
    # the unused 13 go back last-allocated first: the charge used the soonest credits
    assert ledger.settle(engine, h.id, 12, now=T0) == 18
    assert [_remaining(engine, g) for g in (soon, late, forever)] == [0, 8, 10]
    summary = ledger.summary(engine, user, now=T0)
    assert [g["id"] for g in summary.grants] == [late, forever]
    assert summary.grants[0]["expires_at"] == T0 + timedelta(days=2)
    invariants(user)


def test_expiry_removes_only_the_unspent_remainder(engine: Engine, user: int,
                                                   invariants: Check) -> None:
    soon = ledger.grant(engine, user, 10, reason="trial", expires_at=T0 + timedelta(hours=1),
                        now=T0)
    ledger.grant(engine, user, 7, reason="paid", now=T0)
    h = ledger.hold(engine, user, 4, request_id="r", endpoint="e", now=T0)
    ledger.settle(engine, h.id, 4, now=T0)
    later = T0 + timedelta(hours=1)  # expiry is inclusive: at expires_at the grant is gone
    assert ledger.balance(engine, user, now=later) == 7
    assert ledger.ledger_sum(engine, user) == 13  # not yet written
    assert ledger.expire_grants(engine, user, now=later) == 6
    assert ledger.expire_grants(engine, user, now=later) == 0  # idempotent
    assert _kinds(engine, user)[-1] == ("expiry", -6)
    assert _remaining(engine, soon) == 0
    assert ledger.balance(engine, user, now=later) == ledger.ledger_sum(engine, user) == 7
    invariants(user)


def test_hold_writes_due_expiries_before_checking(engine: Engine, user: int,
                                                  invariants: Check) -> None:
    ledger.grant(engine, user, 10, reason="trial", expires_at=T0 + timedelta(hours=1), now=T0)
    ledger.grant(engine, user, 3, reason="paid", now=T0)
    later = T0 + timedelta(hours=2)
    with pytest.raises(InsufficientCredits, match="^Required: 5, Available: 3$"):
        ledger.hold(engine, user, 5, request_id="r", endpoint="e", now=later)
    h = ledger.hold(engine, user, 3, request_id="r", endpoint="e", now=later)
    assert h.balance_after == 0
    assert [k for k, _ in _kinds(engine, user)] == ["grant", "grant", "expiry", "hold"]
    invariants(user)


@pytest.mark.parametrize("charged", [None, 3])  # release, or settle charging 3
def test_credits_returned_to_an_expired_grant_expire_at_once(
        engine: Engine, user: int, invariants: Check, charged: int | None) -> None:
    trial = ledger.grant(engine, user, 10, reason="trial", expires_at=T0 + timedelta(hours=1),
                         now=T0)
    ledger.grant(engine, user, 5, reason="paid", now=T0)
    h = ledger.hold(engine, user, 12, request_id="r", endpoint="e", now=T0)  # 10 trial + 2 paid
    later = T0 + timedelta(hours=3)
    assert ledger.expire_grants(engine, user, now=later) == 0  # all of it is held
    if charged is None:
        after = ledger.release(engine, h.id, reason="query failed", now=later)
    else:
        after = ledger.settle(engine, h.id, charged, now=later)
    assert after == 5  # the 2 paid come back; the trial credits do not
    assert _remaining(engine, trial) == 0
    kinds = _kinds(engine, user)
    back = 12 - (charged or 0)
    assert kinds[-2:] == [("release" if charged is None else "settlement", back),
                          ("expiry", -(back - 2))]
    assert ledger.balance(engine, user, now=later) == ledger.ledger_sum(engine, user) == 5
    invariants(user)


def test_adjust_and_refund(engine: Engine, user: int, invariants: Check) -> None:
    ledger.grant(engine, user, 10, reason="signup", expires_at=T0 + timedelta(days=1), now=T0)
    entry = ledger.adjust(engine, user, 5, reason="goodwill", now=T0)
    assert isinstance(entry, int)
    ledger.adjust(engine, user, -12, reason="chargeback", now=T0)
    assert ledger.balance(engine, user, now=T0) == 3
    with pytest.raises(InsufficientCredits, match="^Required: 4, Available: 3$"):
        ledger.adjust(engine, user, -4, reason="too much", now=T0)
    refund_id = ledger.refund(engine, user, 6, reason="bad results", request_id="q9", now=T0)
    with engine.connect() as conn:
        g = conn.execute(select(CreditGrant).where(CreditGrant.id == refund_id)).one()
    assert g.expires_at is None and g.remaining == 6
    assert _kinds(engine, user) == [("grant", 10), ("adjustment", 5), ("adjustment", -12),
                                    ("refund", 6)]
    # the negative adjustment took the expiring grant first, so nothing is left to expire
    assert ledger.expire_grants(engine, user, now=T0 + timedelta(days=2)) == 0
    assert ledger.balance(engine, user) == ledger.ledger_sum(engine, user) == 9
    invariants(user)


def test_release_stale_holds(engine: Engine, user: int, invariants: Check) -> None:
    ledger.grant(engine, user, 100, reason="signup", now=T0)
    old = ledger.hold(engine, user, 20, request_id="a", endpoint="e", now=T0)
    done = ledger.hold(engine, user, 20, request_id="b", endpoint="e", now=T0)
    ledger.settle(engine, done.id, 5, now=T0)
    fresh = ledger.hold(engine, user, 20, request_id="c", endpoint="e",
                        now=T0 + timedelta(minutes=14))
    now = T0 + timedelta(minutes=15)
    assert ledger.release_stale_holds(engine, older_than_seconds=900, now=now) == 0
    assert ledger.release_stale_holds(engine, older_than_seconds=600, now=now) == 1
    assert ledger.release_stale_holds(engine, older_than_seconds=600, now=now) == 0
    summary = ledger.summary(engine, user, now=now)
    assert [h["id"] for h in summary.open_holds] == [fresh.id]
    assert (summary.balance, summary.held) == (75, 20)
    with pytest.raises(HoldClosed):
        ledger.settle(engine, old.id, 1)
    invariants(user)


def test_summary_and_timestamps(engine: Engine, user: int) -> None:
    paris = timezone(timedelta(hours=1))
    naive = datetime(2030, 6, 1, 0, 0)
    a = ledger.grant(engine, user, 4, reason="a", expires_at=naive, now=T0)
    b = ledger.grant(engine, user, 6, reason="b", expires_at=datetime(2030, 5, 1, 1, 0,
                                                                       tzinfo=paris), now=T0)
    ledger.grant(engine, user, 1, reason="gone", expires_at=T0 + timedelta(seconds=1), now=T0)
    h = ledger.hold(engine, user, 2, request_id="req", endpoint="/v1/export", now=T0)
    s = ledger.summary(engine, user, now=T0 + timedelta(minutes=1))
    assert (s.balance, s.held) == (9, 2)
    assert [g["id"] for g in s.grants] == [b, a]
    assert s.grants[0]["expires_at"] == datetime(2030, 5, 1, 0, 0, tzinfo=UTC)
    assert s.grants[1]["expires_at"] == naive.replace(tzinfo=UTC)  # naive is taken as UTC
    assert all(g["created_at"].tzinfo is not None for g in s.grants)
    assert s.open_holds == [{"id": h.id, "amount": 2, "request_id": "req",
                             "endpoint": "/v1/export", "created_at": T0}]


@pytest.mark.parametrize(("call", "error"), [
    (lambda e, u: L.grant(e, u, 0, reason="x"), ValueError),
    (lambda e, u: L.grant(e, u, -5, reason="x"), ValueError),
    (lambda e, u: L.grant(e, u, 2**62 + 1, reason="x"), ValueError),
    (lambda e, u: L.grant(e, u, 1.0, reason="x"), TypeError),
    (lambda e, u: L.grant(e, u, True, reason="x"), TypeError),
    (lambda e, u: L.grant(e, u, "5", reason="x"), TypeError),
    (lambda e, u: L.grant(e, u, 5, reason=""), ValueError),
    (lambda e, u: L.grant(e, u, 5, reason="   "), ValueError),
    (lambda e, u: L.grant(e, u, 5, reason=None), TypeError),
    (lambda e, u: L.grant(e, u, 5, reason="x", expires_at=T0 - timedelta(days=1),
                               now=T0), ValueError),
    (lambda e, u: L.grant(e, u, 5, reason="x", expires_at=T0, now=T0), ValueError),
    (lambda e, u: L.grant(e, u, 5, reason="x", expires_at="2031-01-01"), TypeError),
    (lambda e, u: L.grant(e, "1", 5, reason="x"), TypeError),
    (lambda e, u: L.grant(e, u, 5, reason="x", now="now"), TypeError),
    (lambda e, u: L.adjust(e, u, 0, reason="x"), ValueError),
    (lambda e, u: L.adjust(e, u, -(2**62) - 1, reason="x"), ValueError),
    (lambda e, u: L.adjust(e, u, -1, reason=""), ValueError),
    (lambda e, u: L.refund(e, u, 0, reason="x"), ValueError),
    (lambda e, u: L.hold(e, u, -1, request_id="r", endpoint="e"), ValueError),
    (lambda e, u: L.hold(e, u, 2.5, request_id="r", endpoint="e"), TypeError),
    (lambda e, u: L.hold(e, u, 1, request_id=None, endpoint="e"), TypeError),
    (lambda e, u: L.hold(e, True, 1, request_id="r", endpoint="e"), TypeError),
    (lambda e, u: L.settle(e, 1, -1), ValueError),
    (lambda e, u: L.settle(e, 1, 1.5), TypeError),
    (lambda e, u: L.settle(e, "1", 1), TypeError),
    (lambda e, u: L.release(e, 1, reason=""), ValueError),
    (lambda e, u: L.release_stale_holds(e, older_than_seconds=-1), ValueError),
    (lambda e, u: L.release_stale_holds(e, older_than_seconds=10**12), ValueError),
    (lambda e, u: L.balance(e, 2**70), ValueError),
])
def test_bad_input_is_refused_and_writes_nothing(
        engine: Engine, user: int, invariants: Check,
        call: Callable[[Engine, Any], object], error: type[Exception]) -> None:
    ledger.grant(engine, user, 10, reason="signup")
    h = ledger.hold(engine, user, 3, request_id="r", endpoint="e")
    before, seq = _counts(engine), invariants(user)["seq"]
    with pytest.raises(error):
        call(engine, user)
    assert _counts(engine) == before and invariants(user)["seq"] == seq
    assert ledger.settle(engine, h.id, 3) == 7  # the open hold was not touched


def test_long_request_ids_and_endpoints_are_truncated(engine: Engine, user: int) -> None:
    ledger.grant(engine, user, 10, reason="x" * 5000, request_id="r" * 300)
    h = ledger.hold(engine, user, 1, request_id="q" * 300, endpoint="/" * 500)
    ledger.release(engine, h.id, reason="failed")
    with engine.connect() as conn:
        hold_row = conn.execute(select(CreditHold)).one()
    assert len(hold_row.request_id) == 64 and len(hold_row.endpoint) == 200
