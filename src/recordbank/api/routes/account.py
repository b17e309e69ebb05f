"""The caller's own account: GET /v1/credits and GET /v1/usage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recordbank.api.deps import Caller, Context
from recordbank.api.responses import success
from recordbank.api.schemas import CreditsEnvelope, UsageEnvelope, errors
from recordbank.usage import report

router = APIRouter(prefix="/v1", tags=["account"])


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@router.get("/credits", response_model=CreditsEnvelope, responses=errors(401, 403, 429))
async def credits(ctx: Context, caller: Caller) -> Response:
    """Balance, open holds and grants with their expiry. Free."""
    s = await ctx.credit_view.summary_async(caller.user_id)
    data = {
        "balance": s.balance, "held": s.held,
        "open_holds": [{k: _iso(v) for k, v in h.items()} for h in s.open_holds],
        "grants": [{k: _iso(v) for k, v in g.items()} for g in s.grants],
    }
    return success(data, {"user_id": caller.user_id},
                   headers={"X-Credits-Remaining": str(s.balance)})


@router.get("/usage", response_model=UsageEnvelope, responses=errors(401, 403, 422, 429))
async def usage(
    request: Request, ctx: Context, caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    since: Annotated[datetime | None, Query(description="ISO date or time, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO date or time, exclusive")] = None,
    endpoint: Annotated[str | None, Query(max_length=300, pattern=r"^/[^\x00-\x1f\x7f]*$",
                                          description="Only this path")] = None,
) -> Response:
    """Your requests, newest first, and totals per day and endpoint. Free."""
    def read() -> Response:
        ctx.usage.flush(timeout=2)  # the caller's own latest requests belong in the answer
        rows, total = report.history(ctx.engine, caller.user_id, limit=limit, offset=offset,
                                     since=since, until=until, endpoint=endpoint)
        totals = report.totals(ctx.engine, caller.user_id, since=since, until=until)
        data = {"requests": [{k: _iso(v) for k, v in r.items()} for r in rows],
                "totals": [{k: _iso(v) for k, v in t.items()} for t in totals]}
        return success(data, {"total": total, "limit": limit, "offset": offset,
                              "returned": len(rows)})
    return await run_in_threadpool(read)
