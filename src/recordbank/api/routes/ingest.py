"""Ingestion over HTTP: upload a file into the queue, follow its job, cancel or retry it, read
its rejected rows. Keys with the `ingest` scope (or admin keys) only.

Handlers check and shape: the body streams to the landing folder in ingest/landing.py, the
queue is ingest/queue.py (the workers run the jobs), jobs are read through ingest/job_view.py,
the live stream is api/sse.py and the rejects CSV ingest/rejects.py.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from recordbank.api import sse
from recordbank.api.auth import Principal
from recordbank.api.deps import Caller, Context
from recordbank.api.errors import ApiError
from recordbank.api.responses import success
from recordbank.api.schemas import errors
from recordbank.api.schemas_ingest import JobEnvelope, JobsEnvelope, UploadEnvelope
from recordbank.ingest import job_view, landed_files, landing, queue, rejects
from recordbank.ingest.detect import FORMATS
from recordbank.store.client import StoreBusy
from recordbank.usage.report import as_utc

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

MAX_ID = 2**63 - 1
MAX_PAGE = 1000
MAX_OFFSET = 1_000_000
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # names that reach the DB: PostgreSQL stores no NUL
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}},
}}}


async def ingest_caller(caller: Caller) -> Principal:
    """Checked before any parameter or byte of the body is looked at."""
    caller.require("ingest")
    return caller


Ingester = Annotated[Principal, Depends(ingest_caller)]
JobId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _job_or_404(ctx: Any, job_id: int, *, detail: bool = False) -> dict[str, Any]:
    job = job_view.get(ctx.engine, job_id, detail=detail)
    if job is None:
        raise ApiError(404, "NOT_FOUND", f"no ingest job with id {job_id}")
    return job


# --- uploads -----------------------------------------------------------------------------------

@router.post("/uploads", status_code=202, response_model=UploadEnvelope,
             responses=errors(401, 403, 413, 415, 422, 429), openapi_extra=UPLOAD_BODY)
async def upload(
    request: Request, ctx: Context, caller: Ingester,
    filename: Annotated[str | None, Query(min_length=1, max_length=1000, description=(
        "The file's name (its extension tells the type) for a raw body; or send "
        "Content-Disposition"))] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=200, pattern=PRINTABLE,
                                       description=(
        "Source name (default: the file name without its extension)"))] = None,
    fmt: Annotated[str | None, Query(alias="format", pattern=f"^({'|'.join(FORMATS)})$",
                                     description="Force the format")] = None,
    table: Annotated[str | None, Query(min_length=1, max_length=200, pattern=PRINTABLE,
                                      description=(
        "Dump table / sheet / XML element to read"))] = None,
    date_order: Annotated[Literal["DMY", "MDY", "YMD"] | None, Query()] = None,
    region: Annotated[str | None, Query(pattern="^[A-Za-z]{2}$", description=(
        "Default phone region (ISO alpha-2)"))] = None,
    encoding: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
) -> Response:
    """Upload one file (raw body, or multipart/form-data with one file part) and queue it.

    202 with the job; `metadata.kind` says whether it is new (`queued`), the same content is
    already waiting or running (`already-queued`, that job), or was ingested before
    (`duplicate`, the job that did it). Over RECORDBANK_MAX_UPLOAD_BYTES: 413; a type the
    pipeline does not read: 415."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except (LookupError, ValueError) as exc:  # ValueError: a NUL in the name
            raise ApiError(422, "VALIDATION_ERROR", f"unknown text encoding {encoding!r}") \
                from exc
    headers = request.headers
    try:
        landed = await landing.receive(
            request.stream(), landing=ctx.settings.resolved_landing_dir(),
            max_bytes=ctx.settings.max_upload_bytes, content_type=headers.get("content-type"),
            content_length=headers.get("content-length"),
            content_disposition=headers.get("content-disposition"), file_name=filename)
    except landing.UploadRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except ClientDisconnect as exc:
        raise ApiError(422, "VALIDATION_ERROR", "the upload was cut off before its end") \
            from exc
    options: dict[str, Any] = {k: v for k, v in {
        "format": fmt, "table": table, "date_order": date_order,
        "region": region.upper() if region else None, "encoding": encoding,
        "uploaded_by": caller.user_id}.items() if v is not None}
    return await run_in_threadpool(_register, ctx, landed, source or FilePath(
        landed.file_name).stem, options)


def _register(ctx: Any, landed: landing.Landed, source: str,
              options: dict[str, Any]) -> Response:
    got = landed_files.enqueue_copy(ctx.engine, landed, source=source, options=options,
                                    origin="upload")
    shown = got.previous_job if got.kind == "duplicate" and got.previous_job else got.job_id
    if got.kind == "duplicate" and not landed.created:
        # an older copy of content ingested since: not needed either
        landed_files.drop_quietly(ctx.engine, ctx.settings, got.job_id)
    job = _job_or_404(ctx, shown)
    return success(job, {"kind": got.kind, "checksum": landed.checksum,
                         "size_bytes": landed.size,
                         "recorded_as": got.job_id if got.kind == "duplicate" else None},
                   status=202, headers={"Location": f"/v1/ingest/jobs/{shown}"})


# --- jobs --------------------------------------------------------------------------------------

@router.get("/jobs", response_model=JobsEnvelope, responses=errors(401, 403, 422, 429))
async def list_jobs(
    request: Request, ctx: Context, _caller: Ingester,
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    source: Annotated[str | None, Query(min_length=1, max_length=200, pattern=PRINTABLE)] = None,
    origin: Annotated[str | None, Query(min_length=1, max_length=32, pattern=PRINTABLE,
                                        description=(
        "upload (HTTP uploads), folder (the watched folder), bucket (the watched bucket) or "
        "http (a scheduled HTTP source)"))] = None,
    since: Annotated[datetime | None, Query(description="Created at or after (UTC if no "
                                                        "zone)")] = None,
    until: Annotated[datetime | None, Query(description="Created before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Ingest jobs, newest first, filtered and paged."""
    if since is not None and until is not None and as_utc(since) >= as_utc(until):
        raise ApiError(422, "VALIDATION_ERROR", "since must be before until")
    f = job_view.JobFilter(status=status, source=source, origin=origin, since=since,
                           until=until)

    def read() -> Response:
        rows, total = job_view.page(ctx.engine, f, limit=limit, offset=offset)
        request.state.rows_returned = len(rows)
        return success(rows, {"total": total, "limit": limit, "offset": offset,
                              "returned": len(rows)})
    return await run_in_threadpool(read)


@router.get("/jobs/{job_id}", response_model=JobEnvelope,
            responses=errors(401, 403, 404, 422, 429))
async def get_job(ctx: Context, _caller: Ingester, job_id: JobId) -> Response:
    """One job: status, counts, progress and rows/s, mapping report, timings, attempts,
    error, and when it was created, started and finished."""
    return success(await run_in_threadpool(_job_or_404, ctx, job_id, detail=True), {})


@router.post("/jobs/{job_id}/retry", response_model=JobEnvelope,
             responses=errors(401, 403, 404, 409, 422, 429))
async def retry_job(ctx: Context, _caller: Ingester, job_id: JobId) -> Response:
    """Queue a failed or cancelled job again, with a fresh set of attempts. 409 for any other
    job, and when the retry could only fail: its content was ingested since (by another job),
    another job of the same content is queued or running, or its file is gone."""
    def run() -> Response:
        before = _job_or_404(ctx, job_id)
        if before["status"] not in ("failed", "cancelled") or before["duplicate_of"]:
            raise ApiError(409, "CONFLICT", f"job {job_id} is {before['status']}: only failed "
                                            "or cancelled jobs can be retried")
        try:
            queue.retry(ctx.engine, job_id)
        except queue.RetryRefused as exc:  # ingested since, queued again, or its file gone
            raise ApiError(409, "CONFLICT", str(exc)) from exc
        return success(_job_or_404(ctx, job_id, detail=True), {})
    return await run_in_threadpool(run)


@router.post("/jobs/{job_id}/cancel", response_model=JobEnvelope,
             responses={202: {"model": JobEnvelope, "description": (
                 "Running: the worker was asked to stop (it stops at its next check)")},
                 **errors(401, 403, 404, 409, 422, 429)})
async def cancel_job(ctx: Context, _caller: Ingester, job_id: JobId) -> Response:
    """Cancel: a queued job ends at once (200); a running one is asked to stop (202) and ends
    `cancelled` when its worker notices. 409 for a finished job."""
    def run() -> Response:
        before = _job_or_404(ctx, job_id)
        if before["status"] in job_view.FINAL:
            raise ApiError(409, "CONFLICT", f"job {job_id} already finished "
                                            f"({before['status']})")
        after = queue.request_cancel(ctx.engine, job_id)
        job = _job_or_404(ctx, job_id, detail=True)
        if after in job_view.FINAL and after != "cancelled":  # it finished meanwhile
            raise ApiError(409, "CONFLICT", f"job {job_id} already finished ({after})")
        return success(job, {"cancel": "requested" if after == "running" else "done"},
                       status=202 if after == "running" else 200)
    return await run_in_threadpool(run)


@router.get("/jobs/{job_id}/events",
            responses={200: {"content": {sse.MEDIA_TYPE: {}}, "description": (
                "Server-Sent Events: started, progress, then completed, failed or cancelled")},
                **errors(401, 403, 404, 422, 429)})
async def job_events(request: Request, ctx: Context, _caller: Ingester,
                     job_id: JobId) -> Response:
    """Follow a job live (text/event-stream) until it ends."""
    await run_in_threadpool(_job_or_404, ctx, job_id)

    async def load() -> dict[str, Any] | None:
        return await run_in_threadpool(job_view.get, ctx.engine, job_id, detail=False)

    async def live() -> dict[str, Any] | None:
        return await run_in_threadpool(job_view.live, ctx.engine, job_id)

    return StreamingResponse(sse.job_events(load, request.is_disconnected, live=live),
                             media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)


@router.get("/jobs/{job_id}/rejects.csv",
            responses={200: {"content": {"text/csv": {}}, "description": (
                "source_row, reasons (codes joined with ;), raw (the row's values as JSON)")},
                **errors(401, 403, 404, 422, 429, 503)})
async def job_rejects(request: Request, ctx: Context, _caller: Ingester,
                      job_id: JobId) -> Response:
    """The job's quarantined rows as CSV, streamed, in source row order."""
    return await run_in_threadpool(_rejects, ctx, request, job_id)


def _rejects(ctx: Any, request: Request, job_id: int) -> Response:
    _job_or_404(ctx, job_id)
    try:
        chunks = rejects.stream(ctx.store, job_id)
        first = next(chunks, rejects.HEADER)  # a failing store fails here, before the 200
    except (ClickHouseError, StoreBusy, ConnectionError) as exc:
        raise ApiError(503, "STORE_UNAVAILABLE", "the record store cannot be reached") from exc

    def body() -> Iterator[bytes]:
        lines = first.count(b"\n") - 1  # a raw value's newlines are escaped in its JSON
        try:
            yield first
            for chunk in chunks:
                lines += chunk.count(b"\n")
                yield chunk
        finally:
            chunks.close()
            request.state.rows_returned = lines

    return StreamingResponse(body(), media_type=rejects.MEDIA_TYPE, headers={
        "Content-Disposition": f'attachment; filename="job-{job_id}-rejects.csv"'})
