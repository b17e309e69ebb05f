"""Response shapes of the admin reports, for the OpenAPI document (handlers write the bytes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class UsageRequest(BaseModel):
    id: int
    created_at: str = Field(description="UTC, ISO 8601")
    request_id: str
    key_id: int | None
    method: str
    path: str = Field(description="The route template, e.g. /v1/records/{record_id}")
    params: dict[str, Any] | None = Field(description="Query string and JSON body, redacted")
    status: int
    error_code: str | None
    rows_returned: int
    credits_charged: int
    duration_ms: float
    client: str | None


class LogEntry(UsageRequest):
    user_id: int | None


class PageMetadata(BaseModel):
    total: int = Field(description="Rows matching the filters")
    limit: int
    offset: int
    returned: int


class LogsEnvelope(BaseModel):
    status: Literal["success"]
    data: list[LogEntry] = Field(description="Newest first")
    metadata: PageMetadata


class ValueCount(BaseModel):
    value: str
    records: int


class Breakdown(BaseModel):
    values: list[ValueCount] = Field(description="The top values, most records first")
    other: int = Field(description="Records with any other value")


class RecordStats(BaseModel):
    total: int
    country: Breakdown
    status: Breakdown
    source: Breakdown


class IngestStats(BaseModel):
    jobs: dict[str, int] = Field(description="Jobs per status")
    jobs_total: int
    rows_read: int
    rows_inserted: int
    rows_duplicate: int
    rows_quarantined: int


class CreditStats(BaseModel):
    granted: int
    refunded: int
    adjusted_up: int
    adjusted_down: int
    charged: int = Field(description="Settled charges of requests")
    expired: int
    held_open: int = Field(description="Set aside by holds of requests still running")
    total_granted: int = Field(description="granted + refunded + adjusted_up")
    total_spent: int = Field(description="charged + adjusted_down")


class DayCount(BaseModel):
    date: str = Field(description="UTC day, YYYY-MM-DD")
    requests: int
    errors: int = Field(description="Requests answered with status >= 400")
    rows: int
    credits: int


class UserRequests(BaseModel):
    user_id: int
    email: str | None
    requests: int


class UserCredits(BaseModel):
    user_id: int
    email: str | None
    credits: int


class TopUsers(BaseModel):
    by_requests: list[UserRequests]
    by_credits: list[UserCredits] = Field(description="Credits charged (settled holds)")


class EndpointLatency(BaseModel):
    method: str
    path: str
    requests: int = Field(description="Requests of this endpoint in the sample")
    p50_ms: float
    p95_ms: float
    avg_ms: float
    max_ms: float


class Stats(BaseModel):
    records: RecordStats
    ingestion: IngestStats
    credits: CreditStats
    requests_per_day: list[DayCount]
    top_users: TopUsers
    latency: list[EndpointLatency]


class StatsMetadata(BaseModel):
    since: str = Field(description="Start of the window of requests, latency and top users")
    until: str | None = Field(description="End of the window (exclusive); null = now")
    top: int
    latency_sample: int = Field(description="Requests the percentiles were computed over")
    latency_sample_cap: int = Field(description="The newest this many requests at most")


class StatsEnvelope(BaseModel):
    status: Literal["success"]
    data: Stats
    metadata: StatsMetadata


class UserSummary(BaseModel):
    id: int
    email: str
    name: str
    role: str
    status: str


class UsageTotal(BaseModel):
    date: str
    endpoint: str
    requests: int
    rows: int
    credits: int
    errors: int


class UserUsage(BaseModel):
    user: UserSummary
    totals: list[UsageTotal] = Field(description="Per UTC day and endpoint, oldest first")
    requests: list[UsageRequest] = Field(description="Newest first, paged")


class UserUsageEnvelope(BaseModel):
    status: Literal["success"]
    data: UserUsage
    metadata: PageMetadata
