"""API key authentication: find the key by its visible prefix, compare hashes in constant time.

Keys are cached for at most Settings.key_cache_seconds (<= 1 s), so a revoked or expired key, or
a disabled user, is refused within a second on every API process without a DB read per request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from recordbank.accounts.keys import looks_like_key, matches, visible_prefix
from recordbank.accounts.users import KeyOwner, key_by_prefix, touch_key
from recordbank.api.errors import ApiError

LAST_USED_EVERY = timedelta(seconds=60)  # last_used_at is a hint, not a log: write it rarely


@dataclass(frozen=True)
class Principal:
    key_id: int
    user_id: int
    role: str
    scopes: tuple[str, ...]
    rate_limit: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" or "admin" in self.scopes

    def require(self, scope: str) -> None:
        if not (self.is_admin or scope in self.scopes):
            raise ApiError(403, "FORBIDDEN", f"this API key lacks the '{scope}' scope")


class KeyCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, KeyOwner | None]] = {}
        self._lock = threading.Lock()

    def lookup_cached(self, key: str) -> Principal | None:
        """Verify from the cache alone (no I/O, fit for the event loop); None when stale."""
        if not looks_like_key(key):
            raise ApiError(401, "INVALID_API_KEY", "invalid API key")
        hit = self._entries.get(visible_prefix(key))
        if hit is None or time.monotonic() - hit[0] >= self.ttl:
            return None
        return check(hit[1], key)

    def lookup(self, engine: Engine, prefix: str) -> KeyOwner | None:
        now = time.monotonic()
        hit = self._entries.get(prefix)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        owner = key_by_prefix(engine, prefix)
        with self._lock:
            if len(self._entries) > 100_000:  # unknown prefixes must not grow it forever
                self._entries.clear()
            self._entries[prefix] = (now, owner)
        if owner is not None and owner.revoked_at is None:
            last = owner.last_used_at
            stamp = datetime.now(UTC)
            if last is None or stamp - last > LAST_USED_EVERY:
                touch_key(engine, owner.key_id, stamp)
        return owner


def read_key(bearer: str | None, x_api_key: str | None) -> str | None:
    for value in (x_api_key, bearer):
        if value and value.strip():
            return value.strip()
    return None


def verify(cache: KeyCache, engine: Engine, key: str) -> Principal:
    """Raise ApiError 401/403 unless `key` is a live key of an active user."""
    if not looks_like_key(key):
        raise ApiError(401, "INVALID_API_KEY", "invalid API key")
    return check(cache.lookup(engine, visible_prefix(key)), key)


def check(owner: KeyOwner | None, key: str) -> Principal:
    if owner is None or not matches(key, owner.key_hash):
        raise ApiError(401, "INVALID_API_KEY", "invalid API key")
    if owner.revoked_at is not None:
        raise ApiError(401, "INVALID_API_KEY", "this API key has been revoked")
    if owner.expires_at is not None and owner.expires_at <= datetime.now(UTC):
        raise ApiError(401, "INVALID_API_KEY", "this API key has expired")
    if owner.user_status != "active":
        raise ApiError(403, "FORBIDDEN", "this account is disabled")
    return Principal(owner.key_id, owner.user_id, owner.role, owner.scopes, owner.rate_limit)
