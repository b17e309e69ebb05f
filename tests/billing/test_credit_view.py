"""The cached credit summary (GET /v1/credits) always equals a fresh ledger.summary: after every
kind of ledger write, after a write through another engine (another process's pool), and after a
grant expires with no write at all."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine

from recordbank.billing import ledger
from recordbank.billing.ledger import UnknownUser
from recordbank.billing.view import CreditView

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _same(view: CreditView, engine: Engine, user: int, now: datetime) -> ledger.CreditSummary:
    cached = view.summary(user, now=now)
    assert cached == ledger.summary(engine, user, now=now)
    return cached


def test_every_ledger_write_is_seen_at_once(engine: Engine, user: int) -> None:
    view = CreditView(engine)
    assert _same(view, engine, user, T0).balance == 0
    ledger.grant(engine, user, 100, reason="t", now=T0)
    assert _same(view, engine, user, T0).balance == 100
    h = ledger.hold(engine, user, 30, request_id="r1", endpoint="/v1/query", now=T0)
    s = _same(view, engine, user, T0)
    assert (s.balance, s.held, [x["id"] for x in s.open_holds]) == (70, 30, [h.id])
    ledger.settle(engine, h.id, 12, now=T0)
    s = _same(view, engine, user, T0)
    assert (s.balance, s.held, s.open_holds) == (88, 0, [])
    ledger.adjust(engine, user, -8, reason="correction", now=T0)
    assert _same(view, engine, user, T0).balance == 80
    h2 = ledger.hold(engine, user, 80, request_id="r2", endpoint="/v1/export", now=T0)
    assert _same(view, engine, user, T0).balance == 0
    ledger.release(engine, h2.id, reason="store down", now=T0)
    assert _same(view, engine, user, T0).balance == 80


def test_a_write_from_another_connection_pool_is_seen(engine: Engine, user: int) -> None:
    view = CreditView(engine)
    ledger.grant(engine, user, 5, reason="t", now=T0)
    assert view.summary(user, now=T0).balance == 5
    other = create_engine(engine.url)  # another pool: as another API process or the CLI would
    try:
        ledger.grant(other, user, 7, reason="from elsewhere", now=T0)
    finally:
        other.dispose()
    assert _same(view, engine, user, T0).balance == 12


def test_a_write_from_another_os_process_is_seen(engine: Engine, user: int) -> None:
    view = CreditView(engine)
    assert view.summary(user).balance == 0
    code = ("import sys\nfrom sqlalchemy import create_engine\n"
            "from recordbank.billing import ledger\n"
            "ledger.grant(create_engine(sys.argv[1]), int(sys.argv[2]), 9, reason='cli')\n")
    url = engine.url.render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", code, url, str(user)], check=True, timeout=120)
    assert view.summary(user).balance == 9


def test_a_grant_expiring_between_requests_stops_counting(engine: Engine, user: int) -> None:
    view = CreditView(engine)
    ledger.grant(engine, user, 10, reason="soon", expires_at=T0 + timedelta(hours=1), now=T0)
    ledger.grant(engine, user, 4, reason="forever", now=T0)
    assert view.summary(user, now=T0).balance == 14
    later = T0 + timedelta(hours=2)  # no ledger write in between: ledger_seq did not move
    s = _same(view, engine, user, later)
    assert (s.balance, [g["reason"] for g in s.grants]) == (4, ["forever"])


def test_unknown_user_is_refused(engine: Engine) -> None:
    with pytest.raises(UnknownUser):
        CreditView(engine).summary(10**12)


def test_the_cache_stays_bounded(engine: Engine, make_user: object) -> None:
    view = CreditView(engine, max_users=3)
    users = [make_user() for _ in range(5)]  # type: ignore[operator]
    for u in users:
        ledger.grant(engine, u, 1, reason="t", now=T0)
        assert view.summary(u, now=T0).balance == 1
    assert len(view._cached) <= 3


def test_the_event_loop_probe_reads_the_same_counter(engine: Engine, user: int) -> None:
    import asyncio

    from sqlalchemy import text

    from recordbank.billing.seq_probe import SeqProbe

    async def probe_twice() -> tuple[int | None, int | None, int | None]:
        probe = SeqProbe(engine)
        try:
            before = await probe.read(user)
            ledger.grant(engine, user, 3, reason="t")
            return before, await probe.read(user), await probe.read(10**12)
        finally:
            await probe.aclose()

    before, after, unknown = asyncio.run(probe_twice())
    with engine.connect() as conn:
        seq = conn.execute(text("SELECT ledger_seq FROM users WHERE id = :u"),
                           {"u": user}).scalar_one()
    assert after == seq and before is not None and after > before
    assert unknown is None


def test_summary_async_answers_from_cache_only_while_the_counter_holds(engine: Engine,
                                                                       user: int) -> None:
    import asyncio

    async def run() -> list[int]:
        view = CreditView(engine)
        try:
            first = (await view.summary_async(user)).balance
            ledger.grant(engine, user, 11, reason="t")
            second = (await view.summary_async(user)).balance
            third = (await view.summary_async(user)).balance
            return [first, second, third]
        finally:
            await view.probe.aclose()

    assert asyncio.run(run()) == [0, 11, 11]


def test_a_probe_that_cannot_read_falls_back_to_the_threaded_read(tmp_path: object) -> None:
    import asyncio
    from pathlib import Path

    from recordbank.billing.seq_probe import SeqProbe

    missing = Path(str(tmp_path)) / "no-such.db"
    probe = SeqProbe(create_engine(f"sqlite:///{missing}"))
    assert asyncio.run(probe.read(1)) is None  # read-only open of a missing file fails
    assert not missing.exists()  # and the probe created nothing
