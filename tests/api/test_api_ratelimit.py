"""Rate limits: memory storage in-process, and real Redis shared by separate OS processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from recordbank.api.ratelimit import (
    MAX_SPEC_CHARS,
    RateDecision,
    RateLimiter,
    parse_limits,
    storage_uri,
)
from recordbank.config import Settings

REDIS_URL = os.environ.get("RECORDBANK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Each test gets its own event loop and builds its limiter inside it."""
    return asyncio.run(fn())  # type: ignore[arg-type]


def limiter(**kw: Any) -> RateLimiter:
    return RateLimiter(Settings(**kw), namespace=f"rbtest-{uuid.uuid4().hex}")


async def hits(rl: RateLimiter, key_id: int, spec: str | None, n: int) -> list[RateDecision]:
    return [await rl.hit_key(key_id, spec) for _ in range(n)]


# -- spec parsing ------------------------------------------------------------------------------


def test_parse_good_specs_shortest_window_first() -> None:
    items = parse_limits("600/minute;10/second")
    assert [(it.amount, it.get_expiry()) for it in items] == [(10, 1), (600, 60)]
    assert [(it.amount, it.get_expiry()) for it in parse_limits("10 per second")] == [(10, 1)]
    assert [(it.amount, it.get_expiry()) for it in parse_limits("5/2 minutes")] == [(5, 120)]
    assert [(it.amount, it.get_expiry()) for it in parse_limits(" 3 / Second , 1/day | 100/hour")] \
        == [(3, 1), (100, 3600), (1, 86400)]
    # identical windows are kept once
    assert len(parse_limits("10/second;10/second")) == 1
    # parsed specs are cached: the same item objects come back
    assert parse_limits("7/second;70/minute")[0] is parse_limits("7/second;70/minute")[0]


@pytest.mark.parametrize("spec", [
    "", "   ", "ten/second", "10/fortnight", "10", "10/", "/second", "0/second",
    "10/0 seconds", "-1/second", "10/second;", "10/second;;5/minute", "1e3/second",
    "10.5/second", "10/second 5/minute", "99999999999/second", "1/1000 years",
    ";".join(["1/second"] * 9), "1/second;" + " " * MAX_SPEC_CHARS, "10/second\x00",
    "DROP TABLE users", "10//second",
])
def test_parse_bad_specs_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_limits(spec)


def test_parse_non_string_refused() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_limits(10)  # type: ignore[arg-type]


def test_bad_settings_and_user_spec_refused() -> None:
    with pytest.raises(ValueError):
        limiter(rate_limit="lots/second")
    with pytest.raises(ValueError):
        limiter(auth_failure_limit="20")
    with pytest.raises(ValueError, match="RECORDBANK_REDIS_URL"):
        limiter(redis_url="http://127.0.0.1:6379")

    async def body() -> None:
        rl = limiter()
        with pytest.raises(ValueError, match="unknown unit"):
            await rl.hit_key(1, "10/fortnight")
        await rl.close()
    run(body)


def test_storage_uri() -> None:
    assert storage_uri("redis://h:6379/2") == "async+redis://h:6379/2"
    assert storage_uri("rediss://:pw@h:6380/0") == "async+rediss://:pw@h:6380/0"
    assert storage_uri("async+redis://h") == "async+redis://h"
    with pytest.raises(ValueError):
        storage_uri("memcached://h:11211")


# -- memory storage ----------------------------------------------------------------------------


def test_eleventh_request_within_a_second_refused() -> None:
    async def body() -> None:
        rl = limiter(rate_limit="10/second;600/minute")
        before = int(time.time())
        decisions = await hits(rl, 1, None, 11)
        ok, refused = decisions[:10], decisions[10]
        assert all(d.allowed for d in ok)
        assert [d.remaining for d in ok] == list(range(9, -1, -1))
        assert {d.limit for d in ok} == {10}  # the per-second window has the fewest remaining
        assert all(d.retry_after == 0 and d.reset >= before for d in ok)
        assert not refused.allowed and refused.remaining == 0 and refused.limit == 10
        assert refused.retry_after >= 1
        assert ok[0].headers() == {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9",
                                   "X-RateLimit-Reset": str(ok[0].reset)}
        assert refused.headers() == {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
                                     "X-RateLimit-Reset": str(refused.reset),
                                     "Retry-After": str(refused.retry_after)}
        # still refused on further attempts
        assert not (await rl.hit_key(1, None)).allowed
        await rl.close()
    run(body)


def test_keys_are_independent() -> None:
    async def body() -> None:
        rl = limiter(rate_limit="3/minute")
        assert [d.allowed for d in await hits(rl, 1, None, 4)] == [True, True, True, False]
        other = await rl.hit_key(2, None)
        assert other.allowed and other.remaining == 2
        assert not (await rl.hit_key(1, None)).allowed
        await rl.close()
    run(body)


def test_user_spec_overrides_default() -> None:
    async def body() -> None:
        rl = limiter(rate_limit="3/minute")
        tighter = await hits(rl, 5, "2/hour", 3)
        assert [d.allowed for d in tighter] == [True, True, False]
        assert tighter[0].limit == 2 and tighter[2].retry_after > 60  # hour window
        looser = await hits(rl, 6, "50/minute", 51)
        assert sum(d.allowed for d in looser) == 50 and not looser[-1].allowed
        # blank or missing spec: the default
        assert [d.allowed for d in await hits(rl, 7, "  ", 4)] == [True, True, True, False]
        assert (await rl.hit_key(8, None)).limit == 3
        await rl.close()
    run(body)


def test_reported_window_is_the_one_with_fewest_remaining() -> None:
    async def body() -> None:
        rl = limiter()
        first = await rl.hit_key(1, "100/second;3/minute")
        assert (first.limit, first.remaining) == (3, 2)
        decisions = await hits(rl, 1, "100/second;3/minute", 3)
        assert [d.allowed for d in decisions] == [True, True, False]
        assert decisions[-1].limit == 3 and decisions[-1].retry_after > 1
        await rl.close()
    run(body)


def test_failed_auth_memory() -> None:
    async def body() -> None:
        rl = limiter(auth_failure_limit="3/minute")
        for _ in range(5):  # checking consumes nothing
            check = await rl.check_failed_auth("10.0.0.1")
            assert check.allowed and check.remaining == 3
        failed = [await rl.hit_failed_auth("10.0.0.1") for _ in range(4)]
        assert [d.allowed for d in failed] == [True, True, True, False]
        assert [d.remaining for d in failed] == [2, 1, 0, 0]
        blocked = await rl.check_failed_auth("10.0.0.1")
        assert not blocked.allowed and blocked.retry_after >= 1
        assert "Retry-After" in blocked.headers()
        assert (await rl.check_failed_auth("10.0.0.2")).allowed
        assert (await rl.check_failed_auth("")).allowed  # unknown address is still an address
        assert await rl.healthy()
        await rl.close()
    run(body)


def test_unreachable_redis_falls_back_to_memory_limits() -> None:
    async def body() -> None:
        rl = limiter(redis_url="redis://127.0.0.1:1/0", rate_limit="10/second;600/minute")
        assert rl.uses_redis
        assert not await rl.healthy()
        decisions = await hits(rl, 1, None, 11)
        assert [d.allowed for d in decisions] == [True] * 10 + [False]
        await rl.close()
    run(body)


# -- real Redis --------------------------------------------------------------------------------


@pytest.fixture
def redis_ns() -> Iterator[str]:
    """A unique key prefix on Redis db 15; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    ns = f"rbtest-{uuid.uuid4().hex}"
    yield ns
    for key in client.scan_iter(f"{ns}*"):
        client.delete(key)
    client.close()


CHILD = """
import asyncio, json, sys, time
from recordbank.api.ratelimit import RateLimiter
from recordbank.config import Settings

url, ns, spec, n, start_at = sys.argv[1:6]

async def main():
    rl = RateLimiter(Settings(redis_url=url, rate_limit=spec), namespace=ns)
    while time.time() < float(start_at):  # start both processes together
        await asyncio.sleep(0.002)
    async def worker(count):
        return [(await rl.hit_key(42, None)).allowed for _ in range(count)]
    results = await asyncio.gather(*(worker(int(n) // 8) for _ in range(8)))
    await rl.close()
    print(json.dumps({"allowed": sum(sum(r) for r in results)}))

asyncio.run(main())
"""


def test_two_processes_share_one_limit(redis_ns: str) -> None:
    limit, per_process = 500, 400
    start_at = time.time() + 2
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, REDIS_URL, redis_ns,
                               f"{limit}/hour", str(per_process), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    allowed = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        allowed.append(json.loads(out)["allowed"])
    assert sum(allowed) == limit
    assert min(allowed) >= limit - per_process  # each got at least what the other could not

    async def stats() -> int:
        # the counter is limits' own fixed window: limits reads it back the same
        storage = RedisStorage("async+" + REDIS_URL, implementation="redispy",
                               key_prefix=redis_ns)
        item = parse_limits(f"{limit}/hour")[0]
        return (await FixedWindowRateLimiter(storage).get_window_stats(item, "key", "42")) \
            .remaining
    assert run(stats) == 0


def test_redis_limits_and_refusals_do_not_consume_longer_windows(redis_ns: str) -> None:
    async def body() -> None:
        rl = RateLimiter(Settings(redis_url=REDIS_URL, rate_limit="10/second;600/minute"),
                         namespace=redis_ns)
        assert rl.uses_redis and await rl.healthy()
        decisions = await hits(rl, 1, None, 11)
        assert [d.allowed for d in decisions] == [True] * 10 + [False]
        assert decisions[-1].retry_after >= 1 and decisions[-1].limit == 10
        assert (await rl.hit_key(2, None)).remaining == 9  # per key
        spec = "2/second;5/hour"
        assert [d.allowed for d in await hits(rl, 3, spec, 8)] == [True, True] + [False] * 6
        storage = RedisStorage("async+" + REDIS_URL, implementation="redispy",
                               key_prefix=redis_ns)
        hour = parse_limits(spec)[1]
        stats = await FixedWindowRateLimiter(storage).get_window_stats(hour, "key", "3")
        assert stats.remaining == 3  # the 6 refusals did not eat the hourly budget
        await rl.close()
    run(body)


def test_redis_failed_auth_shared_between_limiters(redis_ns: str) -> None:
    async def body() -> None:
        settings = Settings(redis_url=REDIS_URL, auth_failure_limit="4/minute")
        a = RateLimiter(settings, namespace=redis_ns)
        b = RateLimiter(settings, namespace=redis_ns)  # another API process
        assert (await a.check_failed_auth("192.0.2.7")).remaining == 4
        assert all([(await a.hit_failed_auth("192.0.2.7")).allowed for _ in range(2)])
        assert all([(await b.hit_failed_auth("192.0.2.7")).allowed for _ in range(2)])
        for rl in (a, b):
            blocked = await rl.check_failed_auth("192.0.2.7")
            assert not blocked.allowed and 1 <= blocked.retry_after <= 61
        assert not (await b.hit_failed_auth("192.0.2.7")).allowed
        other = await a.check_failed_auth("192.0.2.8")
        assert other.allowed and other.remaining == 4
        # checks consumed nothing
        assert (await b.check_failed_auth("192.0.2.8")).remaining == 4
        await a.close()
        await b.close()
    run(body)


def test_redis_failed_auth_block_reaches_other_processes(redis_ns: str) -> None:
    async def body() -> None:
        for cache_seconds in (0.0, 1.0):
            ns = f"{redis_ns}-{cache_seconds}"
            settings = Settings(redis_url=REDIS_URL, auth_failure_limit="2/minute",
                                key_cache_seconds=cache_seconds)
            a = RateLimiter(settings, namespace=ns)
            b = RateLimiter(settings, namespace=ns)
            assert (await a.check_failed_auth("198.51.100.1")).allowed
            assert [(await b.hit_failed_auth("198.51.100.1")).allowed for _ in range(3)] == \
                [True, True, False]
            if cache_seconds == 0:  # no cache: a sees b's block at once
                assert not (await a.check_failed_auth("198.51.100.1")).allowed
            # with a cache, a learns at its own next failure at the latest
            assert not (await a.hit_failed_auth("198.51.100.1")).allowed
            assert not (await a.check_failed_auth("198.51.100.1")).allowed
            await a.close()
            await b.close()
    run(body)
