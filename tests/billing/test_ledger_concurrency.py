"""The ledger under real concurrency: threads, each with its own pooled connection, against
SQLite and PostgreSQL. A monitor thread reads consistent snapshots while the workers run and
checks the invariants on every one of them, not only at the end."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from recordbank.billing import ledger
from recordbank.billing.ledger import InsufficientCredits

Check = Callable[[int], dict[str, Any]]


@contextmanager
def monitoring(check: Check, user_ids: list[int]) -> Iterator[list[BaseException]]:
    """Check the users' invariants over and over until the block ends; collect failures."""
    failures: list[BaseException] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for user_id in user_ids:
                try:
                    check(user_id)
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    failures.append(exc)
                    return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield failures
    finally:
        done.set()
        watcher.join()


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Start `count` threads at once (a barrier) and re-raise the first error any of them hit."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_parallel_holds_exactly_k_succeed(engine: Engine, user: int, invariants: Check) -> None:
    amount, k, threads = 7, 13, 40
    ledger.grant(engine, user, amount * k + 6, reason="signup")
    won: list[ledger.Hold] = []
    lost: list[InsufficientCredits] = []

    def attempt(i: int) -> None:
        try:
            won.append(ledger.hold(engine, user, amount, request_id=f"r{i}", endpoint="e"))
        except InsufficientCredits as exc:
            lost.append(exc)

    with monitoring(invariants, [user]) as failures:
        run_threads(threads, attempt)
    assert not failures, failures[0]
    assert len(won) == k and len(lost) == threads - k
    # A refusal only happens once the balance is below one hold: exactly the 6 left over.
    assert {(e.required, e.available) for e in lost} == {(amount, 6)}
    assert sorted(h.balance_after for h in won) == [6 + amount * j for j in range(k)]
    assert ledger.balance(engine, user) == ledger.ledger_sum(engine, user) == 6
    snap = invariants(user)
    assert len(snap["holds"]) == k and snap["seq"] == 1 + k  # refused holds left no trace

    # Settle and release all of them in parallel too.
    charges = [i % (amount + 1) if i % 3 else None for i in range(k)]

    def close(i: int) -> None:
        charge = charges[i]
        if charge is None:
            ledger.release(engine, won[i].id, reason="failed")
        else:
            ledger.settle(engine, won[i].id, charge)

    with monitoring(invariants, [user]) as failures:
        run_threads(k, close)
    assert not failures, failures[0]
    expected = amount * k + 6 - sum(c for c in charges if c is not None)
    assert ledger.balance(engine, user) == ledger.ledger_sum(engine, user) == expected
    assert ledger.summary(engine, user).held == 0
    invariants(user)


@dataclass
class Tally:
    """What the workers did, counted outside the database, per user."""

    credited: dict[int, int] = field(default_factory=dict)
    charged: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, book: str, user_id: int, amount: int) -> None:
        with self.lock:
            counts = getattr(self, book)
            counts[user_id] = counts.get(user_id, 0) + amount


def test_mixed_holds_settlements_grants_and_adjustments(engine: Engine,
                                                        make_user: Callable[[], int],
                                                        invariants: Check) -> None:
    users = [make_user(), make_user()]
    tally = Tally()
    far = datetime.now(UTC) + timedelta(days=30)
    for u in users:
        ledger.grant(engine, u, 150, reason="signup")
        tally.add("credited", u, 150)

    def spender(i: int) -> None:
        rng = random.Random(i)
        for n in range(12):
            u = rng.choice(users)
            amount = rng.randint(1, 40)
            try:
                h = ledger.hold(engine, u, amount, request_id=f"s{i}-{n}", endpoint="e")
            except InsufficientCredits as exc:
                assert exc.required == amount and 0 <= exc.available < amount
                continue
            if rng.random() < 0.25:
                ledger.release(engine, h.id, reason="query failed")
                continue
            charged = rng.randint(0, amount + 3)  # sometimes above the hold: clipped
            ledger.settle(engine, h.id, charged)
            tally.add("charged", u, min(charged, amount))

    def granter(i: int) -> None:
        rng = random.Random(1000 + i)
        for _ in range(10):
            u = rng.choice(users)
            amount = rng.randint(1, 30)
            op = rng.choice(("grant", "expiring", "refund", "adjust", "debit"))
            if op == "grant":
                ledger.grant(engine, u, amount, reason="top-up")
            elif op == "expiring":
                ledger.grant(engine, u, amount, reason="promo", expires_at=far)
            elif op == "refund":
                ledger.refund(engine, u, amount, reason="refund")
            elif op == "adjust":
                ledger.adjust(engine, u, amount, reason="goodwill")
            else:
                try:
                    ledger.adjust(engine, u, -amount, reason="correction")
                except InsufficientCredits:
                    continue
                tally.add("charged", u, amount)
                continue
            tally.add("credited", u, amount)

    def worker(i: int) -> None:
        (spender if i < 12 else granter)(i)

    with monitoring(invariants, users) as failures:
        run_threads(16, worker)
    assert not failures, failures[0]
    for u in users:
        expected = tally.credited[u] - tally.charged.get(u, 0)
        assert ledger.balance(engine, u) == ledger.ledger_sum(engine, u) == expected
        snap = invariants(u)
        assert all(h.status != "open" for h in snap["holds"])
        assert ledger.summary(engine, u).balance == expected


def test_grants_expiring_during_concurrent_spending(engine: Engine, user: int,
                                                    invariants: Check) -> None:
    """Grants run out (real clock) while holds take from them and are settled: spending never
    takes from an expired grant (checked on every snapshot), and once the expiry rows are
    written the balance is what was granted minus what was charged minus what expired."""
    start = datetime.now(UTC)
    ledger.grant(engine, user, 60, reason="paid")
    for j in range(10):
        ledger.grant(engine, user, 25, reason=f"promo {j}",
                     expires_at=datetime.now(UTC) + timedelta(milliseconds=150 * (j + 1)))
    charged_total = [0]
    lock = threading.Lock()

    def spender(i: int) -> None:
        rng = random.Random(i)
        for n in range(15):
            amount = rng.randint(1, 15)
            try:
                h = ledger.hold(engine, user, amount, request_id=f"x{i}-{n}", endpoint="e")
            except InsufficientCredits:
                continue
            if rng.random() < 0.3:
                ledger.release(engine, h.id, reason="failed")
            else:
                charged = rng.randint(0, amount)
                ledger.settle(engine, h.id, charged)
                with lock:
                    charged_total[0] += charged

    with monitoring(invariants, [user]) as failures:
        run_threads(10, spender)
    assert not failures, failures[0]
    ledger.expire_grants(engine, user, now=start + timedelta(days=1))
    snap = invariants(user)
    expired = -sum(r.amount for r in snap["ledger"] if r.kind == "expiry")
    bal = ledger.balance(engine, user, now=start + timedelta(days=1))
    assert bal == ledger.ledger_sum(engine, user) == 60 + 250 - charged_total[0] - expired
    assert all(g.remaining == 0 for g in snap["grants"].values() if g.expires_at is not None)


def test_stale_hold_sweep_races_with_settlement(engine: Engine, user: int,
                                                invariants: Check) -> None:
    """A sweeper and the owners close the same holds at once: each closes exactly once."""
    threads = 8
    ledger.grant(engine, user, 1000, reason="signup")
    old = datetime.now(UTC) - timedelta(hours=1)
    holds = [ledger.hold(engine, user, 10, request_id=f"h{i}", endpoint="e", now=old)
             for i in range(40)]
    settled: list[int] = []
    swept: list[int] = []

    def worker(i: int) -> None:
        if i == 0:
            swept.append(ledger.release_stale_holds(engine, older_than_seconds=60))
            return
        for h in holds[i - 1::threads - 1]:
            try:
                ledger.settle(engine, h.id, 4)
            except ledger.HoldClosed:
                continue
            settled.append(h.id)

    with monitoring(invariants, [user]) as failures:
        run_threads(threads, worker)
    assert not failures, failures[0]
    assert len(settled) + swept[0] == len(holds)
    assert ledger.balance(engine, user) == ledger.ledger_sum(engine, user) \
        == 1000 - 4 * len(settled)
    assert all(h.status != "open" for h in invariants(user)["holds"])
