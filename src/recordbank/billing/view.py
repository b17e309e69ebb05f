"""A user's credit summary for display, cached per process and checked against the ledger.

GET /v1/credits is free and polled; building the summary costs three queries. Every ledger write
bumps users.ledger_seq in its own transaction, so a summary read after seeing ledger_seq = S
stays exact until ledger_seq moves: one indexed read of that counter replaces the three queries.
Grants that expire between two requests are dropped at answer time (the balance counts only
unexpired grants, whether or not the expiry row has been written yet).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from recordbank.billing import ledger
from recordbank.billing.ledger import CreditSummary, UnknownUser
from recordbank.billing.seq_probe import SeqProbe
from recordbank.db.models import utcnow

_SEQ = text("SELECT ledger_seq FROM users WHERE id = :uid")


class CreditView:
    def __init__(self, engine: Engine, *, max_users: int = 100_000) -> None:
        self.engine = engine
        self.max_users = max_users
        self._cached: dict[int, tuple[int, CreditSummary]] = {}
        self._lock = threading.Lock()
        self.probe = SeqProbe(engine)

    async def summary_async(self, user_id: int) -> CreditSummary:
        """From the cache when the probe, read on the event loop, shows ledger_seq unmoved;
        otherwise the threaded read (which reads ledger_seq again, before the summary)."""
        seq = await self.probe.read(user_id)
        hit = self._cached.get(user_id)
        if seq is not None and hit is not None and hit[0] == seq:
            return _as_of(hit[1], utcnow())
        return await run_in_threadpool(self.summary, user_id)

    def summary(self, user_id: int, *, now: datetime | None = None) -> CreditSummary:
        """Exact as of the read of ledger_seq, which happens before the summary it keys."""
        with self.engine.connect() as conn:
            seq = conn.execute(_SEQ, {"uid": user_id}).scalar()
        if seq is None:
            raise UnknownUser(f"no user {user_id}")
        at = now or utcnow()
        hit = self._cached.get(user_id)
        if hit is not None and hit[0] == seq:
            return _as_of(hit[1], at)
        fresh = ledger.summary(self.engine, user_id, now=at)
        with self._lock:
            if len(self._cached) >= self.max_users:
                self._cached.clear()
            self._cached[user_id] = (int(seq), fresh)
        return fresh


def _as_of(cached: CreditSummary, now: datetime) -> CreditSummary:
    grants = [g for g in cached.grants if g["expires_at"] is None or g["expires_at"] > now]
    if len(grants) == len(cached.grants):
        return cached
    return replace(cached, grants=grants, balance=sum(g["remaining"] for g in grants))
