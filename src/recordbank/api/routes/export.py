"""Streamed export of every matching row: GET /v1/export (query string), POST /v1/export.

Credits: the hold covers `max_rows` (the caller's, or the most the balance can pay for); the
charge is settled when the stream ends, for the rows actually sent. If the stream breaks on our
side nothing is charged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from recordbank.api.auth import Principal
from recordbank.api.context import AppContext
from recordbank.api.deps import Caller, Context
from recordbank.api.errors import ApiError
from recordbank.api.metering import Meter
from recordbank.api.routes.records import store_failure
from recordbank.api.schemas import errors
from recordbank.billing import ledger
from recordbank.query.compile import compile_select
from recordbank.query.export import FORMATS, MEDIA_TYPES, ExportStats, stream_export
from recordbank.query.model import InvalidQuery, QueryRequest
from recordbank.query.params import query_from_params
from recordbank.query.run import QueryTimeout, StoreUnavailable

router = APIRouter(prefix="/v1", tags=["export"])

ExportFormat = Literal["csv", "ndjson", "parquet"]
# Without a sort of the caller's, exports follow the table's ORDER BY: ClickHouse then reads in
# order and never sorts (a newest-first export of a whole country sorts it all in memory).
EXPORT_ORDER = ("country", "created_date", "id")


class ExportRequest(QueryRequest):
    """A query body plus the export's format and row cap (limit/offset/cursor do not apply)."""

    format: ExportFormat = Field(default="csv", description="csv (default), ndjson or parquet")
    max_rows: Annotated[int | None, Field(ge=1, description=(
        "Stop after this many rows; default: as many as your balance pays for"))] = None


def _start_export(ctx: AppContext, caller: Principal, request: Request, q: QueryRequest,
                  fmt: str, max_rows: int | None) -> Response:
    caller.require("export")
    if q.cursor or q.offset:
        raise ApiError(400, "INVALID_QUERY", "exports stream every row: no cursor or offset")
    time_limit = ctx.settings.billable_time_limit
    if max_rows is None:
        max_rows = ctx.pricing.rows_affordable(ledger.balance(ctx.engine, caller.user_id),
                                               time_limit)
        if max_rows < 1:
            required = ctx.pricing.max_cost(1, time_limit)
            raise ApiError(402, "INSUFFICIENT_CREDITS",
                           f"Required: {required}, Available: "
                           f"{ledger.balance(ctx.engine, caller.user_id)}")
    if q.sort is None:  # the table's own order streams without sorting (flat memory)
        q = q.model_copy(update={"sort": list(EXPORT_ORDER)})
    try:
        sql, params, fields = compile_select(q, limit=None)
    except InvalidQuery as exc:
        raise store_failure(exc) from exc
    meter = Meter(ctx, caller, request)
    remaining = meter.hold(ctx.pricing.max_cost(max_rows, time_limit))
    stats = ExportStats()
    started = time.perf_counter()
    try:
        chunks = stream_export(ctx.store, sql, params, fields, fmt, max_rows=max_rows,
                               settings=ctx.settings, stats=stats)
        first = next(chunks, b"")  # errors in the query surface here, before the 200 is sent
    except BaseException as exc:
        meter.release("export failed to start")
        if isinstance(exc, InvalidQuery | QueryTimeout | StoreUnavailable):
            raise store_failure(exc) from exc
        raise

    def body() -> Iterator[bytes]:
        ok = False
        try:
            yield first
            yield from chunks
            ok = True
        finally:
            if ok or stats.rows:  # finished, or the client went away mid-stream: pay what came
                cost = ctx.pricing.cost(stats.rows, time.perf_counter() - started)
                meter.settle(cost)
            else:
                meter.release("export failed")
            request.state.rows_returned = stats.rows

    headers = {
        "X-Credits-Held": str(meter.held), "X-Credits-Remaining": str(remaining),
        "X-Export-Max-Rows": str(max_rows),
        "Content-Disposition": f'attachment; filename="records.{fmt}"',
    }
    return StreamingResponse(body(), media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/export", responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()},
                                        "description": "The rows, streamed"},
                                  **errors(400, 401, 402, 403, 422, 429, 503, 504)})
async def export_get(request: Request, ctx: Context, caller: Caller) -> Response:
    """Every matching row as CSV (default), NDJSON or Parquet: the /v1/records query string
    plus `_format` and `_max_rows`."""
    items = list(request.query_params.multi_items())
    fmt = "csv"
    max_rows: int | None = None
    rest = []
    for key, value in items:
        if key == "_format":
            if value not in FORMATS:
                raise ApiError(400, "INVALID_QUERY", f"_format must be one of {', '.join(FORMATS)}")
            fmt = value
        elif key == "_max_rows":
            if not value.isdigit() or int(value) < 1:
                raise ApiError(400, "INVALID_QUERY", "_max_rows must be a positive integer")
            max_rows = int(value)
        else:
            rest.append((key, value))
    try:
        q = query_from_params(rest)
    except InvalidQuery as exc:
        raise store_failure(exc) from exc
    return await run_in_threadpool(_start_export, ctx, caller, request, q, fmt, max_rows)


@router.post("/export", responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()},
                                         "description": "The rows, streamed"},
                                   **errors(400, 401, 402, 403, 413, 422, 429, 503, 504)})
async def export_post(request: Request, ctx: Context, caller: Caller,
                      body: ExportRequest) -> Response:
    """Every matching row, for a query body (filters, fields, sort) plus format and max_rows."""
    return await run_in_threadpool(_start_export, ctx, caller, request, body, body.format,
                                   body.max_rows)
