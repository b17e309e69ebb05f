"""Per-key request limits and per-address failed-authentication limits (`limits`, async API).

Strategy: fixed windows, hit through ``storage.incr`` (exactly what limits'
FixedWindowRateLimiter.hit does, but keeping the new count instead of a bool):

* correct across processes: each hit is one atomic INCR+EXPIRE script in Redis, so N API
  processes sharing a key can never admit more than the limit inside a window;
* one Redis command per window per request, and the count it returns gives
  X-RateLimit-Remaining for free. Moving window and sliding-window counter only return a bool
  from a hit and need a second command per window for the headers (measured on this machine:
  ~240 us of client CPU per request for two fixed windows with the redis-py bridge, ~560 us for
  two sliding windows with stats; coredis was slower for every strategy, so we use redis-py);
* the reset time comes from the window we created (count == 1) or one TTL per window per
  process, cached; a window seen exhausted is remembered locally until it resets, because a
  fixed-window count only grows until then: abusive traffic is refused without Redis.

The price is the fixed-window burst: up to twice a window's limit across a window boundary.
Specs with a short and a long window (the default "10/second;600/minute") bound that.

check_failed_auth runs before every authentication, so its "not blocked" answers are reused
for key_cache_seconds; this process's own failures invalidate them at once.

Windows are hit shortest first and hitting stops at the first exhausted one, so a request
refused by the per-second window does not eat the per-minute budget.

If Redis fails, limits fall back to this process's memory (retrying Redis every second), so an
outage degrades to per-process limits instead of refusing or admitting everything.
One RateLimiter belongs to one event loop (asyncio locks and Redis connections are per loop).
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

import redis.asyncio
from limits import RateLimitItem
from limits import parse as parse_one
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.errors import StorageError

from recordbank.config import Settings

log = logging.getLogger(__name__)

MAX_SPEC_CHARS = 200
MAX_WINDOWS = 8
MAX_AMOUNT = 1_000_000_000
MAX_WINDOW_SECONDS = 366 * 86_400
_PART = re.compile(r"^\s*(\d+)\s*(?:/|\s+per\s+)\s*(\d+)?\s*([a-z]+)\s*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[;,|]")
_TTL_SLACK = 0.5  # Redis TTL is rounded to whole seconds
_CACHE_MAX = 50_000
_FALLBACK_RETRY_SECONDS = 1.0
_REDIS_TIMEOUT_SECONDS = 0.5


@dataclass
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds when the reported window resets
    retry_after: int  # seconds, >= 1 when refused, 0 when allowed

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


def parse_limits(spec: str) -> list[RateLimitItem]:
    """"10/second;600/minute" -> items, shortest window first. ValueError names the bad part."""
    if not isinstance(spec, str):
        raise ValueError(f"rate limit spec must be a string, got {type(spec).__name__}")
    return list(_parse_cached(spec))


@lru_cache(maxsize=1024)
def _parse_cached(spec: str) -> tuple[RateLimitItem, ...]:
    if not spec.strip():
        raise ValueError("rate limit spec is empty (expected e.g. '10/second;600/minute')")
    if len(spec) > MAX_SPEC_CHARS:
        raise ValueError(f"rate limit spec is longer than {MAX_SPEC_CHARS} characters")
    parts = _SEPARATORS.split(spec)
    if len(parts) > MAX_WINDOWS:
        raise ValueError(f"rate limit spec has more than {MAX_WINDOWS} windows")
    items: dict[tuple[int, int], RateLimitItem] = {}
    for part in parts:
        match = _PART.match(part)
        if match is None:
            raise ValueError(f"bad rate limit {part.strip()!r} in {spec!r}: expected "
                             "'<count>/<unit>' or '<count>/<n> <units>', e.g. '10/second'")
        amount, multiples = int(match.group(1)), match.group(2)
        if multiples is not None and int(multiples) == 0:
            raise ValueError(f"bad rate limit {part.strip()!r}: the window length is 0")
        if amount < 1:
            raise ValueError(f"bad rate limit {part.strip()!r}: the count must be at least 1")
        if amount > MAX_AMOUNT:
            raise ValueError(f"bad rate limit {part.strip()!r}: the count is above {MAX_AMOUNT}")
        try:
            item = parse_one(part.strip())
        except ValueError as exc:
            raise ValueError(f"bad rate limit {part.strip()!r}: unknown unit "
                             f"{match.group(3)!r} (use second, minute, hour or day)") from exc
        if item.get_expiry() > MAX_WINDOW_SECONDS:
            raise ValueError(f"bad rate limit {part.strip()!r}: windows are at most 366 days")
        items[(item.amount, item.get_expiry())] = item
    return tuple(sorted(items.values(), key=lambda it: (it.get_expiry(), it.amount)))


def storage_uri(redis_url: str) -> str:
    """Settings.redis_url (redis://host:port/db) -> the `limits` async storage URI."""
    if redis_url.startswith("async+"):
        return redis_url
    if redis_url.startswith(("redis://", "rediss://")):
        return "async+" + redis_url
    raise ValueError(f"RECORDBANK_REDIS_URL must start with redis:// or rediss://, "
                     f"got {redis_url.split('://')[0]!r}")


class RateLimiter:
    def __init__(self, settings: Settings, *, namespace: str = "recordbank") -> None:
        self._default = parse_limits(settings.rate_limit)
        self._auth_limits = parse_limits(settings.auth_failure_limit)
        self._memory = MemoryStorage()
        self._pool: redis.asyncio.ConnectionPool | None = None
        self._primary: Storage = self._memory
        if settings.redis_url:
            uri = storage_uri(settings.redis_url)
            self._pool = redis.asyncio.ConnectionPool.from_url(
                uri.removeprefix("async+"), socket_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS)
            self._primary = RedisStorage(uri, wrap_exceptions=True, implementation="redispy",
                                         key_prefix=namespace,
                                         connection_pool=self._pool)  # type: ignore[arg-type]
        self._fallback_until = 0.0
        self._last_warning = 0.0
        self._resets: dict[str, float] = {}  # storage key -> epoch when its window resets
        self._blocked: dict[str, float] = {}  # storage key -> epoch until which it is exhausted
        # "not blocked" answers of check_failed_auth, reused for key_cache_seconds: the check
        # runs before every authentication and should not cost a Redis round trip each time.
        self._auth_ok_seconds = settings.key_cache_seconds
        self._auth_ok: dict[str, tuple[float, RateDecision]] = {}

    @property
    def uses_redis(self) -> bool:
        return self._pool is not None

    async def hit_key(self, key_id: int, limits_spec: str | None) -> RateDecision:
        """Count one request of an API key against its spec (None or blank: the default)."""
        items = self._default if limits_spec is None or not limits_spec.strip() else \
            parse_limits(limits_spec)
        return await self._hit(items, "key", str(key_id))

    async def hit_failed_auth(self, client: str) -> RateDecision:
        """Count one failed authentication from an address; refused once it is over the limit."""
        self._auth_ok.pop(_client_id(client), None)
        return await self._hit(self._auth_limits, "auth", _client_id(client))

    async def check_failed_auth(self, client: str) -> RateDecision:
        """Is this address blocked? Consumes nothing. A block made by another process is seen
        within key_cache_seconds, or at once after this process counts a failure itself."""
        now = time.time()
        ident = _client_id(client)
        cached = self._auth_ok.get(ident)
        if cached is not None and cached[0] > now:
            return cached[1]
        keys = [item.key_for("auth", ident) for item in self._auth_limits]
        blocked = self._known_block(self._auth_limits, keys, now)
        if blocked is not None:
            return blocked
        best: tuple[int, float, RateLimitItem] | None = None
        for item, key in zip(self._auth_limits, keys, strict=True):
            count = await self._get(key)
            remaining = max(0, item.amount - count)
            reset = now + item.get_expiry() if count == 0 else await self._reset(key, now)
            if remaining == 0:
                self._remember_block(key, reset)
                return _refused(item, reset, now)
            if best is None or (remaining, -reset) < (best[0], -best[1]):
                best = (remaining, reset, item)
        assert best is not None
        decision = RateDecision(True, best[2].amount, best[0], math.ceil(best[1]), 0)
        if self._auth_ok_seconds > 0:
            if len(self._auth_ok) >= _CACHE_MAX:
                self._auth_ok.clear()
            self._auth_ok[ident] = (now + self._auth_ok_seconds, decision)
        return decision

    async def healthy(self) -> bool:
        """Storage reachable: Redis answers PING (memory storage always is)."""
        if self._pool is None:
            return True
        return bool(await self._primary.check())

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def _hit(self, items: list[RateLimitItem], *ident: str) -> RateDecision:
        now = time.time()
        keys = [item.key_for(*ident) for item in items]
        blocked = self._known_block(items, keys, now)
        if blocked is not None:
            return blocked
        best: tuple[int, float, RateLimitItem] | None = None
        for item, key in zip(items, keys, strict=True):
            expiry = item.get_expiry()
            count = await self._incr(key, expiry)
            if count == 1:  # this hit opened the window
                reset = now + expiry
                self._remember(self._resets, key, reset)
            else:
                reset = await self._reset(key, now)
            remaining = max(0, item.amount - count)
            if remaining == 0:
                self._remember_block(key, reset)
            if count > item.amount:
                return _refused(item, reset, now)
            if best is None or (remaining, -reset) < (best[0], -best[1]):
                best = (remaining, reset, item)
        assert best is not None
        return RateDecision(True, best[2].amount, best[0], math.ceil(best[1]), 0)

    def _known_block(self, items: list[RateLimitItem], keys: list[str],
                     now: float) -> RateDecision | None:
        for item, key in zip(items, keys, strict=True):
            until = self._blocked.get(key)
            if until is None:
                continue
            if until > now:
                return _refused(item, until + _TTL_SLACK, now)
            del self._blocked[key]
        return None

    def _remember_block(self, key: str, reset: float) -> None:
        # A TTL-derived reset can be half a second late: stop trusting the block that much
        # earlier and let storage answer the last moments exactly.
        self._remember(self._blocked, key, reset - _TTL_SLACK)

    @staticmethod
    def _remember(cache: dict[str, float], key: str, value: float) -> None:
        if len(cache) >= _CACHE_MAX:
            now = time.time()
            for stale in [k for k, v in cache.items() if v <= now]:
                del cache[stale]
            if len(cache) >= _CACHE_MAX:
                cache.clear()
        cache[key] = value

    async def _reset(self, key: str, now: float) -> float:
        cached = self._resets.get(key)
        if cached is not None and cached > now:
            return cached
        reset = await self._expiry(key)
        if reset <= now:  # key vanished between INCR and TTL: a new window starts now-ish
            reset = now + 1
        self._remember(self._resets, key, reset)
        return reset

    def _storage(self) -> Storage:
        if self._pool is not None and time.monotonic() >= self._fallback_until:
            return self._primary
        return self._memory

    def _degrade(self, exc: Exception) -> None:
        self._fallback_until = time.monotonic() + _FALLBACK_RETRY_SECONDS
        if time.monotonic() - self._last_warning > 10:
            self._last_warning = time.monotonic()
            log.warning("rate limit storage unreachable (%s); using per-process memory limits",
                        exc)

    async def _incr(self, key: str, expiry: int) -> int:
        storage = self._storage()
        if storage is not self._memory:
            try:
                return await storage.incr(key, expiry)
            except StorageError as exc:
                self._degrade(exc)
        return await self._memory.incr(key, expiry)

    async def _get(self, key: str) -> int:
        storage = self._storage()
        if storage is not self._memory:
            try:
                return await storage.get(key)
            except StorageError as exc:
                self._degrade(exc)
        return await self._memory.get(key)

    async def _expiry(self, key: str) -> float:
        storage = self._storage()
        if storage is not self._memory:
            try:
                return await storage.get_expiry(key)
            except StorageError as exc:
                self._degrade(exc)
        return await self._memory.get_expiry(key)


def _client_id(client: str) -> str:
    return (client or "unknown").strip()[:100] or "unknown"


def _refused(item: RateLimitItem, reset: float, now: float) -> RateDecision:
    return RateDecision(False, item.amount, 0, math.ceil(reset),
                        max(1, math.ceil(reset - now)))
