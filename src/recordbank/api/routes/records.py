"""Querying records: POST /v1/query, GET /v1/records (Datasette-style), GET /v1/records/{id}."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recordbank.api import idempotency
from recordbank.api.auth import Principal
from recordbank.api.context import AppContext
from recordbank.api.deps import Caller, Context, set_headers
from recordbank.api.errors import ApiError
from recordbank.api.metering import Meter
from recordbank.api.responses import success
from recordbank.api.schemas import EstimateEnvelope, QueryEnvelope, RecordEnvelope, errors
from recordbank.billing import ledger
from recordbank.query.compile import compile_query
from recordbank.query.model import InvalidQuery, QueryRequest
from recordbank.query.params import query_from_params
from recordbank.query.run import QueryTimeout, StoreUnavailable, get_record, run_query

router = APIRouter(prefix="/v1", tags=["records"])

QUERY_ERRORS = errors(400, 401, 402, 403, 409, 413, 422, 429, 503, 504)
IdempotencyKey = Annotated[str | None, Header(
    description="Retrying with the same key returns the first answer without a second charge")]
DryRun = Annotated[bool, Query(description="Return the most this query can cost; charge nothing")]


def store_failure(exc: Exception) -> ApiError:
    """Our side failed: map the query layer's errors to the API's codes."""
    if isinstance(exc, InvalidQuery):
        details = {"valid": exc.valid} if exc.valid else None
        return ApiError(400, exc.code, exc.message, details=details)
    if isinstance(exc, QueryTimeout):
        return ApiError(504, "QUERY_TIMEOUT", str(exc))
    if isinstance(exc, StoreUnavailable):
        return ApiError(503, "STORE_UNAVAILABLE", str(exc))
    raise exc


def run_billed_query(ctx: AppContext, caller: Principal, request: Request, q: QueryRequest,
                     *, dry_run: bool, idempotency_key: str | None, body: bytes) -> Response:
    """Hold -> query -> settle, with the idempotent replay around it."""
    caller.require("query")
    try:  # refuse a bad query (fields, operators, values, cursor) before holding anything
        compiled = compile_query(q, secret=ctx.secret, max_offset=ctx.settings.max_offset,
                                 count_cap=ctx.settings.count_cap)
    except InvalidQuery as exc:
        raise store_failure(exc) from exc
    max_cost = ctx.pricing.max_cost(q.limit, ctx.settings.billable_time_limit)
    if dry_run:
        balance = ledger.balance(ctx.engine, caller.user_id)
        return success({"query": q.model_dump(mode="json", by_alias=True)},
                       {"dry_run": True, "max_credits": max_cost, "credits_remaining": balance})
    claim: int | None = None
    if idempotency_key is not None:
        found = idempotency.claim(ctx.engine, caller.user_id, idempotency_key,
                                  idempotency.fingerprint(request.method, request.url.path,
                                                          request.url.query, body))
        if isinstance(found, idempotency.StoredAnswer):
            set_headers(request, {"Idempotent-Replayed": "true"})
            return Response(found.body, status_code=found.status_code,
                            media_type=found.media_type, headers=found.headers)
        claim = found
    meter = Meter(ctx, caller, request)
    try:
        meter.hold(max_cost)
        try:
            page = run_query(ctx.store, q, ctx.settings, compiled)
        except (InvalidQuery, QueryTimeout, StoreUnavailable) as exc:
            raise store_failure(exc) from exc
        remaining = meter.settle(ctx.pricing.cost(len(page.rows), page.query_ms / 1000))
    except BaseException:
        meter.release("request failed")
        if claim is not None:
            idempotency.abandon(ctx.engine, claim)
        raise
    request.state.rows_returned = len(page.rows)
    metadata = {
        "total_records": page.total, "total_is_approximate": page.total_approximate,
        "returned": len(page.rows), "page": None if q.cursor else q.offset // q.limit + 1,
        "limit": q.limit, "offset": q.offset, "next_cursor": page.next_cursor,
        "credits_used": meter.charged, "credits_remaining": remaining,
        "query_time_ms": round(page.query_ms, 3),
    }
    response = success(page.rows, metadata, headers=meter.headers())
    if claim is not None:
        idempotency.complete(ctx.engine, claim, idempotency.StoredAnswer(
            200, "application/json", meter.headers(), bytes(response.body)))
    return response


@router.post("/query", response_model=QueryEnvelope | EstimateEnvelope,
             responses=QUERY_ERRORS)
async def query(request: Request, ctx: Context, caller: Caller, body: QueryRequest,
                dry_run: DryRun = False,
                idempotency_key: IdempotencyKey = None) -> Response:
    """Filter, sort and page records; priced per row returned (see `dry_run` for the most)."""
    raw = await request.body()
    return await run_in_threadpool(run_billed_query, ctx, caller, request, body,
                                   dry_run=dry_run, idempotency_key=idempotency_key, body=raw)


@router.get("/records", response_model=QueryEnvelope | EstimateEnvelope,
            responses=QUERY_ERRORS)
async def records(request: Request, ctx: Context, caller: Caller,
                  idempotency_key: IdempotencyKey = None) -> Response:
    """The same query in the query string: `?country=US&created_date__gte=2024-01-01&
    status__in=active,pending&_fields=email,name&_sort=-created_date&_limit=100&_cursor=…`;
    `_dry_run=true` prices it without charging."""
    items = list(request.query_params.multi_items())
    dry_run = any(k == "_dry_run" and v.lower() in ("1", "true", "yes") for k, v in items)
    try:
        q = query_from_params([(k, v) for k, v in items if k != "_dry_run"])
    except InvalidQuery as exc:
        raise store_failure(exc) from exc
    return await run_in_threadpool(run_billed_query, ctx, caller, request, q,
                                   dry_run=dry_run, idempotency_key=idempotency_key, body=b"")


def _one_record(ctx: AppContext, caller: Principal, request: Request, record_id: str,
                fields: list[str] | None) -> Response:
    caller.require("query")
    meter = Meter(ctx, caller, request)
    started = time.perf_counter()
    try:
        meter.hold(ctx.pricing.max_cost(1, ctx.settings.billable_time_limit))
        try:
            row = get_record(ctx.store, record_id, fields, ctx.settings)
        except (InvalidQuery, QueryTimeout, StoreUnavailable) as exc:
            raise store_failure(exc) from exc
        if row is None:
            raise ApiError(404, "NOT_FOUND", f"no record with id {record_id}")
        seconds = time.perf_counter() - started
        remaining = meter.settle(ctx.pricing.cost(1, seconds))
    except BaseException:
        meter.release("request failed")
        raise
    request.state.rows_returned = 1
    return success(row, {"credits_used": meter.charged, "credits_remaining": remaining,
                         "query_time_ms": round((time.perf_counter() - started) * 1000, 3)},
                   headers=meter.headers())


@router.get("/records/{record_id}", response_model=RecordEnvelope,
            responses=errors(400, 401, 402, 403, 404, 429, 503, 504))
async def record(request: Request, ctx: Context, caller: Caller, record_id: str,
                 _fields: Annotated[str | None, Query(
                     description="Comma-separated fields to return")] = None) -> Response:
    """One record by id; not found costs nothing."""
    fields = [f.strip() for f in _fields.split(",") if f.strip()] if _fields else None
    return await run_in_threadpool(_one_record, ctx, caller, request, record_id, fields)
