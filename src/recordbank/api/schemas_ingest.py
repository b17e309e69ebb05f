"""Response shapes of the ingestion routes, for the OpenAPI document (handlers write bytes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from recordbank.api.schemas_reports import PageMetadata


class JobCounts(BaseModel):
    read: int
    inserted: int
    duplicate: int
    quarantined: int


class JobError(BaseModel):
    code: str | None = Field(description="e.g. format:unsupported, file:unreadable")
    message: str


class IngestJob(BaseModel):
    id: int
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str | None
    origin: str | None = Field(description="upload (HTTP), folder, bucket, http (a scheduled "
                                               "source), or null for `recordbank ingest`")
    source: str
    file_name: str
    checksum: str | None = Field(description="SHA-256 of the file's bytes")
    size_bytes: int | None
    format: str | None
    options: dict[str, Any]
    counts: JobCounts
    progress: dict[str, Any] | None = Field(description=(
        "The worker's latest report: stage, rows, expected, rejected, rows_per_s, updated_at"))
    rows_per_s: float | None
    timings: dict[str, Any] | None = Field(description="Seconds per stage, and total")
    attempts: int
    max_attempts: int
    cancel_requested: bool
    duplicate_of: int | None = Field(description="The job that already ingested this content")
    error: JobError | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    next_attempt_at: str | None = Field(description="When a queued job may run (retry wait)")
    heartbeat_at: str | None


class IngestJobDetail(IngestJob):
    mapping_report: dict[str, Any] | None = Field(description=(
        "Per file part: each column's field, method, confidence and note; format, dates"))
    reader_notes: dict[str, Any] | None


class UploadMetadata(BaseModel):
    kind: Literal["queued", "already-queued", "duplicate"] = Field(description=(
        "queued: a new job; already-queued: this content waits or runs in `data`; duplicate: "
        "`data` is the job that already ingested it"))
    checksum: str
    size_bytes: int
    recorded_as: int | None = Field(default=None, description=(
        "duplicate: the finished job recording this upload"))


class UploadEnvelope(BaseModel):
    status: Literal["success"]
    data: IngestJob
    metadata: UploadMetadata


class JobEnvelope(BaseModel):
    status: Literal["success"]
    data: IngestJobDetail
    metadata: dict[str, Any]


class JobsEnvelope(BaseModel):
    status: Literal["success"]
    data: list[IngestJob] = Field(description="Newest first")
    metadata: PageMetadata
