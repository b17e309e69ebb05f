"""Webhook endpoints, the events they receive, and how a receiver checks a delivery.

Events are written as delivery rows (an outbox) in the caller's transaction where there is one
(a job's outcome is recorded together with its deliveries, so neither exists without the
other); the dispatcher (notify/dispatch.py) sends them. Every request carries

    X-Recordbank-Event: job.completed
    X-Recordbank-Delivery: <delivery id>            (the same on every retry: dedupe on it)
    X-Recordbank-Timestamp: <unix seconds>
    X-Recordbank-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from recordbank.db.session import session_scope
from recordbank.notify.models import EVENTS, Webhook, WebhookDelivery

SIGNATURE_HEADER = "X-Recordbank-Signature"
TIMESTAMP_HEADER = "X-Recordbank-Timestamp"
EVENT_HEADER = "X-Recordbank-Event"
DELIVERY_HEADER = "X-Recordbank-Delivery"


class WebhookError(ValueError):
    """A webhook definition that cannot be accepted."""


@dataclass(frozen=True)
class CreatedWebhook:
    id: int
    secret: str  # shown once


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver runs: the signature matches and the timestamp is recent (replays of an
    old delivery fail)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookError("a webhook URL must be http(s)://host/…")
    if len(url) > 2000:
        raise WebhookError("a webhook URL must be at most 2,000 characters")
    return url


def create_webhook(engine: Engine, url: str, events: list[str], *,
                   balance_threshold: int | None = None, description: str = "",
                   also: Callable[[Session, dict[str, Any]], None] | None = None,
                   ) -> CreatedWebhook:
    """`also(session, described)` runs inside the transaction (an admin route's audit row)."""
    unknown = sorted(set(events) - set(EVENTS))
    if not events or unknown:
        raise WebhookError(f"events must be some of {', '.join(EVENTS)}"
                           + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    if ("balance.low" in events) != (balance_threshold is not None):
        raise WebhookError("balance.low needs a balance_threshold, and only it takes one")
    if balance_threshold is not None and not 0 < balance_threshold < 2**62:
        raise WebhookError("balance_threshold must be a positive number of credits")
    secret = "whsec_" + secrets.token_urlsafe(32)
    with session_scope(engine) as s:
        hook = Webhook(url=check_url(url), events=sorted(set(events)), secret=secret,
                       balance_threshold=balance_threshold, description=description[:500],
                       enabled=True, created_at=datetime.now(UTC))
        s.add(hook)
        s.flush()
        if also is not None:
            also(s, describe(hook))
        _cache.clear()
        return CreatedWebhook(hook.id, secret)


def delete_webhook(engine: Engine, webhook_id: int, *,
                   also: Callable[[Session, dict[str, Any]], None] | None = None) -> bool:
    """False when there is no such webhook; `also(session, described)` runs in the deleting
    transaction."""
    with session_scope(engine) as s:
        hook = s.get(Webhook, webhook_id, with_for_update=True)
        if hook is None:
            return False
        shown = describe(hook)
        s.delete(hook)
        s.flush()
        if also is not None:
            also(s, shown)
        _cache.clear()
        return True


def describe(hook: Webhook) -> dict[str, Any]:
    """A webhook as shown to admins: never its secret."""
    return {"id": hook.id, "url": hook.url, "events": hook.events,
            "balance_threshold": hook.balance_threshold, "description": hook.description,
            "enabled": hook.enabled, "created_at": hook.created_at}


def list_webhooks(engine: Engine) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return [describe(h) for h in s.scalars(select(Webhook).order_by(Webhook.id))]


def emit(session: Session, event: str, payload: dict[str, Any],
         hooks: list[Webhook] | None = None) -> int:
    """Queue `event` for every enabled webhook subscribed to it, in the caller's transaction;
    returns how many deliveries were queued."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    if hooks is None:
        hooks = list(session.scalars(select(Webhook).where(Webhook.enabled.is_(True))))
    now = datetime.now(UTC)
    body = {"event": event, "created_at": now.isoformat(), "data": payload}
    count = 0
    for hook in hooks:
        if event in hook.events:
            session.add(WebhookDelivery(webhook_id=hook.id, event=event, payload=body,
                                        status="pending", attempts=0, next_attempt_at=now,
                                        created_at=now))
            count += 1
    return count


class _HookCache:
    """Balance thresholds per database, re-read at most every few seconds: checked after every
    charge, so it must not cost a query each time."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._by_db: dict[str, tuple[float, list[tuple[int, int]]]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._by_db.clear()

    def thresholds(self, engine: Engine) -> list[tuple[int, int]]:
        key = engine.url.render_as_string(hide_password=True)
        hit = self._by_db.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        with session_scope(engine) as s:
            rows = s.execute(select(Webhook.id, Webhook.balance_threshold, Webhook.events)
                             .where(Webhook.enabled.is_(True),
                                    Webhook.balance_threshold.is_not(None))).all()
        hooks = [(r.id, int(r.balance_threshold)) for r in rows
                 if "balance.low" in (r.events or [])]
        with self._lock:
            self._by_db[key] = (time.monotonic(), hooks)
        return hooks


_cache = _HookCache()


def balance_changed(engine: Engine, user_id: int, before: int, after: int) -> int:
    """After a charge: queue balance.low for each webhook whose threshold the balance just
    went below (from >= threshold to < threshold), once per crossing."""
    crossed = [hook_id for hook_id, t in _cache.thresholds(engine) if after < t <= before]
    if not crossed:
        return 0
    with session_scope(engine) as s:
        hooks = list(s.scalars(select(Webhook).where(Webhook.id.in_(crossed))))
        payloads = 0
        for hook in hooks:
            payloads += emit(s, "balance.low", {"user_id": user_id, "balance": after,
                                                "previous_balance": before,
                                                "threshold": hook.balance_threshold}, [hook])
        return payloads
