"""Response shapes, for the OpenAPI document (handlers write the JSON bytes themselves)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. INSUFFICIENT_CREDITS")
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    status: Literal["error"]
    error: ErrorDetail


class QueryMetadata(BaseModel):
    total_records: int
    total_is_approximate: bool = Field(description="True when the count stopped at the cap")
    returned: int
    page: int | None = Field(description="1-based page when paging by offset; null with a cursor")
    limit: int
    offset: int
    next_cursor: str | None
    credits_used: int
    credits_remaining: int
    query_time_ms: float


class QueryEnvelope(BaseModel):
    status: Literal["success"]
    data: list[dict[str, Any]]
    metadata: QueryMetadata


class EstimateMetadata(BaseModel):
    dry_run: Literal[True]
    max_credits: int = Field(description="The most this request can cost (what would be held)")
    credits_remaining: int


class EstimateEnvelope(BaseModel):
    status: Literal["success"]
    data: dict[str, Any]
    metadata: EstimateMetadata


class RecordMetadata(BaseModel):
    credits_used: int
    credits_remaining: int
    query_time_ms: float


class RecordEnvelope(BaseModel):
    status: Literal["success"]
    data: dict[str, Any]
    metadata: RecordMetadata


class Grant(BaseModel):
    id: int
    amount: int
    remaining: int
    expires_at: str | None
    reason: str
    created_at: str


class OpenHold(BaseModel):
    id: int
    amount: int
    endpoint: str
    created_at: str


class Credits(BaseModel):
    balance: int
    held: int
    open_holds: list[OpenHold]
    grants: list[Grant]


class CreditsEnvelope(BaseModel):
    status: Literal["success"]
    data: Credits
    metadata: dict[str, Any]


class UsageEnvelope(BaseModel):
    status: Literal["success"]
    data: dict[str, Any] = Field(description="`requests` (newest first) and `totals` per day "
                                             "and endpoint")
    metadata: dict[str, Any]


class HealthEnvelope(BaseModel):
    status: Literal["success", "error"]
    data: dict[str, Any]
    error: ErrorDetail | None = None


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route (always the one envelope)."""
    return {status: {"model": ErrorEnvelope} for status in statuses}
