"""GET /health: can we reach the store, the relational DB and (if configured) Redis? No key."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recordbank.api.context import AppContext
from recordbank.api.deps import Context
from recordbank.api.responses import success
from recordbank.api.schemas import HealthEnvelope

router = APIRouter(tags=["health"])


def _check_store(ctx: AppContext) -> str | None:
    try:
        ctx.store.scalar("SELECT 1")
        return None
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"{type(exc).__name__}: {exc}"[:300]


def _check_db(ctx: AppContext) -> str | None:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:300]


@router.get("/health", response_model=HealthEnvelope, responses={503: {"model": HealthEnvelope}})
async def health(ctx: Context) -> Response:
    started = time.perf_counter()
    checks: dict[str, dict[str, object]] = {}
    store_error = await run_in_threadpool(_check_store, ctx)
    checks["store"] = {"ok": store_error is None, "error": store_error,
                       "url": ctx.store.url.split("@")[-1]}
    db_error = await run_in_threadpool(_check_db, ctx)
    checks["database"] = {"ok": db_error is None, "error": db_error,
                          "dialect": ctx.engine.dialect.name}
    if ctx.settings.redis_url:
        ok = await ctx.limiter.healthy()
        checks["redis"] = {"ok": ok, "error": None if ok else "Redis did not answer"}
    else:
        checks["redis"] = {"ok": True, "error": None, "note": "not configured (in-memory)"}
    healthy = all(c["ok"] for c in checks.values())
    body = {"checks": checks, "time_ms": round((time.perf_counter() - started) * 1000, 3)}
    if healthy:
        return success(body)
    failed = ", ".join(name for name, c in checks.items() if not c["ok"])
    code = "STORE_UNAVAILABLE" if not checks["store"]["ok"] else "SERVICE_UNAVAILABLE"
    payload = {"status": "error", "error": {"code": code, "message": f"unhealthy: {failed}"},
               "data": body}
    return Response(orjson.dumps(payload), status_code=503, media_type="application/json")
