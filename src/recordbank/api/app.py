"""The FastAPI application: routes, error envelope, request middleware and shared context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from recordbank import __version__
from recordbank.api import errors
from recordbank.api.auth import KeyCache
from recordbank.api.context import AppContext
from recordbank.api.middleware import RequestMiddleware
from recordbank.api.ratelimit import RateLimiter
from recordbank.api.routes import (
    account,
    admin_accounts,
    admin_reports,
    admin_sources,
    admin_webhooks,
    export,
    health,
    ingest,
    records,
)
from recordbank.billing import ledger
from recordbank.billing.pricing import Pricing
from recordbank.billing.view import CreditView
from recordbank.config import Settings, get_settings
from recordbank.ingest.http_source import SourceScheduler
from recordbank.ingest.watch import FolderWatcher, WatchLoop
from recordbank.ingest.worker import WorkerPool
from recordbank.notify.dispatch import DispatchLoop
from recordbank.runtime import Runtime, open_runtime
from recordbank.usage.log import UsageLog

log = logging.getLogger(__name__)

DESCRIPTION = """
Query and export person/contact records, paid for in credits.

**Authentication**: send your API key in `X-API-Key` (or `Authorization: Bearer …`).

**Pricing**: base + rows returned x per-row + compute seconds beyond the free ones x per-second,
rounded up to whole credits. The most a request can cost is held before it runs (402
INSUFFICIENT_CREDITS if your balance cannot cover it); the real cost is charged after and the rest
released. Errors cost nothing. `dry_run=true` tells the most a query can cost. Every success has
`credits_used` and `credits_remaining`, and the headers X-Credits-Charged / X-Credits-Remaining.

**Rate limits**: per key; X-RateLimit-Limit / -Remaining / -Reset on every response, 429
RATE_LIMITED with Retry-After when exceeded.

**Errors**: `{"status": "error", "error": {"code": "…", "message": "…"}}` with a stable code.
"""


def build_context(runtime: Runtime) -> AppContext:
    settings = runtime.settings
    return AppContext(
        settings=settings, store=runtime.store, engine=runtime.engine,
        pricing=Pricing.from_settings(settings),
        limiter=RateLimiter(settings, namespace=settings.redis_prefix),
        usage=UsageLog(runtime.engine), secret=settings.resolved_secret_key(),
        keys=KeyCache(settings.key_cache_seconds), credit_view=CreditView(runtime.engine),
    )


async def _release_stale_holds(ctx: AppContext) -> None:
    """Holds left open by a process that died mid-request give their credits back."""
    while True:
        try:
            released = await run_in_threadpool(
                ledger.release_stale_holds, ctx.engine,
                older_than_seconds=ctx.settings.hold_ttl_seconds)
            if released:
                log.warning("released %d stale credit holds", released)
        except Exception:  # noqa: BLE001 - keep sweeping; the DB may come back
            log.exception("releasing stale holds failed")
        await asyncio.sleep(min(60, ctx.settings.hold_ttl_seconds / 4))


def _watch_loop(runtime: Runtime) -> WatchLoop | None:
    settings = runtime.settings
    if settings.watch_dir is None:
        return None
    watcher = FolderWatcher(runtime.engine, settings.watch_dir,
                            settle_seconds=settings.watch_settle_seconds)
    return WatchLoop(watcher, settings.watch_interval_seconds).start()


def _bucket_loop(runtime: Runtime) -> WatchLoop | None:
    settings = runtime.settings
    if not settings.bucket_url:
        return None
    from recordbank.ingest.bucket_watch import BucketAccess, BucketWatcher  # boto3: only if used

    stop = threading.Event()
    watcher = BucketWatcher(runtime.engine, settings.bucket_url,
                            settings.resolved_landing_dir(), BucketAccess.from_settings(settings),
                            stop=stop)
    return WatchLoop(watcher, settings.bucket_interval_seconds, name="watch-bucket",
                     stop=stop).start()


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or open_runtime(settings or get_settings())
    ctx = build_context(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_release_stale_holds(ctx))
        # The ingest queue's workers live in this process: the embedded store allows no other.
        workers = WorkerPool(runtime, runtime.settings.ingest_workers).start()
        watch = _watch_loop(runtime)
        bucket = _bucket_loop(runtime)
        deliveries = DispatchLoop(runtime.engine).start()  # webhooks
        http_sources = (SourceScheduler(runtime.engine, runtime.settings.resolved_landing_dir())
                        .start() if runtime.settings.http_sources_enabled else None)
        try:
            yield
        finally:
            if http_sources is not None:
                http_sources.close()
            deliveries.close()
            for loop in (watch, bucket):
                if loop is not None:
                    loop.close()
            workers.close()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await run_in_threadpool(ctx.usage.close)
            await ctx.limiter.close()
            await ctx.credit_view.probe.aclose()

    app = FastAPI(title="recordbank", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.ctx = ctx
    errors.install(app)
    for module in (health, records, export, account, admin_reports, admin_accounts, admin_webhooks,
                   admin_sources, ingest):
        app.include_router(module.router)
    app.add_middleware(RequestMiddleware, usage=ctx.usage,
                       max_body=runtime.settings.max_request_bytes)
    return app
