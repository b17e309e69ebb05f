"""Sending webhook deliveries: claim the due ones, POST them signed, retry with backoff.

A delivery is claimed like an ingest job (one UPDATE ... RETURNING, FOR UPDATE SKIP LOCKED on
PostgreSQL: db/claim.py) with a short lease, so several API processes may run dispatchers. A
2xx answer delivers it; anything else (or no answer) retries after 10 s, 20 s, 40 s … up to
MAX_ATTEMPTS, then the delivery is failed and stays visible to admins with its last error.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine, and_, func, or_, select

from recordbank.db import claim as db_claim
from recordbank.db.session import session_scope
from recordbank.notify.models import Webhook, WebhookDelivery
from recordbank.notify.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0
LEASE_SECONDS = 60.0


class Dispatcher:
    def __init__(self, engine: Engine, *, timeout: float = 10.0,
                 backoff_base: float = BACKOFF_BASE_SECONDS,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self.engine = engine
        self.backoff_base = backoff_base
        self.max_attempts = max_attempts
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def claim(self, now: datetime | None = None) -> int | None:
        """Take the pending delivery due longest (and not leased), or None."""
        at = now or datetime.now(UTC)
        d = WebhookDelivery
        due = and_(d.status == "pending", d.next_attempt_at <= at,
                   or_(d.lease_until.is_(None), d.lease_until < at))
        row = db_claim.claim_next(
            self.engine, d.id, due=due, order_by=[d.next_attempt_at, d.id],
            values={"lease_until": at + timedelta(seconds=LEASE_SECONDS),
                    "attempts": d.attempts + 1},
            returning=[d.id])
        return None if row is None else int(row[0])

    def send_due(self, now: datetime | None = None) -> int:
        """Send every delivery due now; returns how many were attempted."""
        sent = 0
        while (delivery_id := self.claim(now)) is not None:
            self.send(delivery_id, now=now)
            sent += 1
        return sent

    def send(self, delivery_id: int, *, now: datetime | None = None) -> str:
        with session_scope(self.engine) as s:
            delivery = s.get(WebhookDelivery, delivery_id)
            hook = s.get(Webhook, delivery.webhook_id) if delivery is not None else None
            if delivery is None:
                return "gone"
            target = (hook.url, hook.secret) if hook is not None and hook.enabled else None
            event, payload, attempts = delivery.event, delivery.payload, delivery.attempts
        if target is None:
            return self._record(delivery_id, ok=False, code=None, attempts=attempts,
                                error="the webhook was deleted or disabled", final=True,
                                now=now)
        url, secret = target
        body = orjson.dumps(payload)
        stamp = int(time.time())
        headers = {"Content-Type": "application/json", EVENT_HEADER: event,
                   DELIVERY_HEADER: str(delivery_id), TIMESTAMP_HEADER: str(stamp),
                   SIGNATURE_HEADER: sign(secret, stamp, body),
                   "User-Agent": "recordbank-webhooks/1"}
        code: int | None = None
        error: str | None = None
        try:
            answer = self.client.post(url, content=body, headers=headers)
            code = answer.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}: {answer.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        return self._record(delivery_id, ok=error is None, code=code, attempts=attempts,
                            error=error, final=attempts >= self.max_attempts, now=now)

    def _record(self, delivery_id: int, *, ok: bool, code: int | None, attempts: int,
                error: str | None, final: bool, now: datetime | None) -> str:
        at = now or datetime.now(UTC)
        with session_scope(self.engine) as s:
            d = s.get(WebhookDelivery, delivery_id)
            if d is None:
                return "gone"
            d.last_status_code, d.last_error, d.lease_until = code, error, None
            if ok:
                d.status, d.delivered_at = "delivered", at
            elif final:
                d.status = "failed"
            else:
                delay = min(BACKOFF_MAX_SECONDS, self.backoff_base * 2 ** (attempts - 1))
                d.next_attempt_at = at + timedelta(seconds=delay)
            return d.status


def deliveries(engine: Engine, *, webhook_id: int | None = None, status: str | None = None,
               limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Deliveries for admins, newest first, with the total."""
    q = select(WebhookDelivery)
    if webhook_id is not None:
        q = q.where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        q = q.where(WebhookDelivery.status == status)
    with session_scope(engine) as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset))
        return [{"id": d.id, "webhook_id": d.webhook_id, "event": d.event,
                 "status": d.status, "attempts": d.attempts,
                 "next_attempt_at": d.next_attempt_at, "last_status_code": d.last_status_code,
                 "last_error": d.last_error, "created_at": d.created_at,
                 "delivered_at": d.delivered_at, "payload": d.payload} for d in rows], total


class DispatchLoop:
    """Sends due deliveries every `interval` seconds in a thread (for `recordbank serve`)."""

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.dispatcher = Dispatcher(engine)
        self.interval = interval
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="webhooks")

    def start(self) -> DispatchLoop:
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self._thread.join(timeout)
        self.dispatcher.close()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.dispatcher.send_due()
            except Exception:  # noqa: BLE001 - the DB may be back at the next round
                log.exception("sending webhook deliveries failed")
            self.stop.wait(self.interval)
