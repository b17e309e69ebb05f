"""Admin reports: the usage log (JSON or CSV), dashboard stats, one user's usage. Admin keys only.

Handlers only check and shape: the queries live in usage/admin_report.py, usage/stats.py and
usage/report.py. All of them run on worker threads (relational DB and store are blocking), after
the usage log's batch writer has flushed what came before, so an admin sees the latest requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from recordbank.api.context import AppContext
from recordbank.api.deps import Admin, Context
from recordbank.api.errors import ApiError
from recordbank.api.responses import success
from recordbank.api.routes.records import store_failure
from recordbank.api.schemas import errors
from recordbank.api.schemas_reports import LogsEnvelope, StatsEnvelope, UserUsageEnvelope
from recordbank.query.run import QueryTimeout, StoreUnavailable
from recordbank.usage import admin_report, report, stats
from recordbank.usage.admin_report import MAX_CSV_ROWS, MAX_PAGE, STATUS_PATTERN, LogFilter

router = APIRouter(prefix="/v1/admin", tags=["admin"])

MAX_ID = 2**63 - 1  # BIGINT: a larger id is a 422, not a database overflow
MAX_OFFSET = 1_000_000
DEFAULT_DAYS = 30
FLUSH_SECONDS = 2.0
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# A route as logged: starts with /, no control characters (a NUL would reach PostgreSQL).
PATH_PATTERN = r"^/[^\x00-\x1f\x7f]*$"

Since = Annotated[datetime | None, Query(description="ISO date or time (UTC if no zone), "
                                                     "inclusive")]
Until = Annotated[datetime | None, Query(description="ISO date or time, exclusive")]
Id = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def _check_window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and \
            report.as_utc(since) >= report.as_utc(until):
        raise ApiError(422, "VALIDATION_ERROR", "since must be before until")


def _flush(ctx: AppContext) -> None:
    ctx.usage.flush(timeout=FLUSH_SECONDS)  # requests just made belong in the answer


@router.get(
    "/logs", response_model=LogsEnvelope,
    responses={200: {"content": {"text/csv": {}},
                     "description": "A page of the log (JSON), or the rows as CSV"},
               **errors(401, 403, 422, 429)})
async def logs(
    request: Request, ctx: Context, _admin: Admin,
    user_id: Id = None, key_id: Id = None,
    path: Annotated[str | None, Query(max_length=301, pattern=PATH_PATTERN, description=(
        "The route exactly (/v1/records/{record_id}), or a prefix ending in * (/v1/admin/*)"
    ))] = None,
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN, description=(
        "A status (404) or a class (4xx)"))] = None,
    since: Since = None, until: Until = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_CSV_ROWS, description=(
        f"1..{MAX_PAGE} (default 100); CSV 1..{MAX_CSV_ROWS} (default {MAX_CSV_ROWS})"))] = None,
    offset: Offset = 0,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """Every API request in the usage log, newest first, filtered; `format=csv` streams the
    same rows as CSV."""
    _check_window(since, until)
    if fmt == "json" and limit is not None and limit > MAX_PAGE:
        raise ApiError(422, "VALIDATION_ERROR",
                       f"limit: at most {MAX_PAGE} rows per JSON page (CSV: {MAX_CSV_ROWS})")
    f = LogFilter(user_id=user_id, key_id=key_id, path=path, status=status, since=since,
                  until=until)
    if fmt == "csv":
        return await run_in_threadpool(_csv, ctx, request, f, limit or MAX_CSV_ROWS, offset)
    size = limit or 100

    def read() -> Response:
        _flush(ctx)
        rows, total = admin_report.page(ctx.engine, f, limit=size, offset=offset)
        request.state.rows_returned = len(rows)
        return success(rows, {"total": total, "limit": size, "offset": offset,
                              "returned": len(rows)})
    return await run_in_threadpool(read)


def _csv(ctx: AppContext, request: Request, f: LogFilter, limit: int, offset: int) -> Response:
    _flush(ctx)
    chunks = admin_report.iter_rows(ctx.engine, f, limit=limit, offset=offset)
    first = next(chunks, [])  # a failing query fails here, before the 200 goes out
    sent = [len(first)]

    def counted() -> Iterator[list[dict[str, Any]]]:
        yield first
        for chunk in chunks:
            sent[0] += len(chunk)
            yield chunk

    def body() -> Iterator[bytes]:
        try:
            yield from admin_report.csv_lines(counted())
        finally:
            request.state.rows_returned = sent[0]

    return StreamingResponse(body(), media_type=CSV_MEDIA_TYPE, headers={
        "Content-Disposition": 'attachment; filename="usage-log.csv"'})


@router.get("/stats", response_model=StatsEnvelope,
            responses=errors(401, 403, 422, 429, 503, 504))
async def admin_stats(
    ctx: Context, _admin: Admin,
    since: Annotated[datetime | None, Query(description=(
        f"Start of the window for requests, top users and latency (default: the last "
        f"{DEFAULT_DAYS} UTC days, or the {DEFAULT_DAYS} days before `until`)"))] = None,
    until: Until = None,
    top: Annotated[int, Query(ge=1, le=100, description="How many values per list")] = 10,
) -> Response:
    """Records by country, status and source; ingestion and credit totals (all time); requests
    per day, top users and p50/p95 latency per endpoint (in the window)."""
    if since is None and until is not None:  # the 30 days before the given end
        since = report.as_utc(until) - timedelta(days=DEFAULT_DAYS)
    elif since is None:  # the last 30 UTC days, today included
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=DEFAULT_DAYS - 1)
    _check_window(since, until)
    window = stats.Window(since=since, until=until)

    def read() -> Response:
        try:
            records = stats.records(ctx.store, ctx.settings, top=top)
        except (QueryTimeout, StoreUnavailable) as exc:
            raise store_failure(exc) from exc
        _flush(ctx)
        latency, sampled = stats.latency(ctx.engine, window)
        data = {
            "records": records,
            "ingestion": stats.ingestion(ctx.engine),
            "credits": stats.credits(ctx.engine),
            "requests_per_day": stats.requests_per_day(ctx.engine, window),
            "top_users": stats.top_users(ctx.engine, window, top=top),
            "latency": latency,
        }
        return success(data, {
            "since": report.as_utc(since).isoformat(),
            "until": report.as_utc(until).isoformat() if until else None,
            "top": top, "latency_sample": sampled, "latency_sample_cap": stats.LATENCY_SAMPLE})
    return await run_in_threadpool(read)


@router.get("/users/{user_id}/usage", response_model=UserUsageEnvelope,
            responses=errors(401, 403, 404, 422, 429))
async def user_usage(
    request: Request, ctx: Context, _admin: Admin,
    user_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
    since: Since = None, until: Until = None,
    endpoint: Annotated[str | None, Query(max_length=300, pattern=PATH_PATTERN,
                                          description="Only this route, for the requests")] = None,
) -> Response:
    """One user's totals per UTC day and endpoint, and their requests (newest first, paged)."""
    _check_window(since, until)

    def read() -> Response:
        user = admin_report.user_summary(ctx.engine, user_id)
        if user is None:
            raise ApiError(404, "NOT_FOUND", f"no user with id {user_id}")
        _flush(ctx)
        rows, total = report.history(ctx.engine, user_id, limit=limit, offset=offset,
                                     since=since, until=until, endpoint=endpoint)
        totals = report.totals(ctx.engine, user_id, since=since, until=until)
        request.state.rows_returned = len(rows)
        return success({"user": user, "totals": totals, "requests": rows},
                       {"total": total, "limit": limit, "offset": offset, "returned": len(rows)})
    return await run_in_threadpool(read)
