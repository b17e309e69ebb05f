"""Admin API for scheduled HTTP JSON sources: list, create, read, change, delete, run now.

Every route needs an admin key (403 FORBIDDEN otherwise). A source's secret goes in with
POST or PATCH and never comes out: answers say `"secret": "set"` or `"unset"`, and errors are
cleaned of it. Every change and run is in the admin audit log (GET /v1/admin/audit), summed up
without the secret, header values or URL query values. Handlers are plain functions: FastAPI
runs them on its worker threads, where the blocking DB calls and a run's HTTP fetches belong
(never on the event loop).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session
from starlette.responses import Response

from recordbank.accounts import audit
from recordbank.api.deps import Context
from recordbank.api.errors import ApiError
from recordbank.api.responses import success
from recordbank.api.routes.admin_accounts import MAX_ID, Admin, audit_actor
from recordbank.api.schemas import errors
from recordbank.ingest import http_sources_model as sources
from recordbank.ingest.http_source import Busy, run_now

router = APIRouter(prefix="/v1/admin/sources", tags=["admin"])

SourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="HTTP source id")]
PaginationType = Literal["none", "page", "cursor", "link"]
_PARAM = r"^[A-Za-z0-9_.\[\]-]{1,100}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pagination(_Strict):
    type: PaginationType = Field(default="none", description=(
        "`page`: page numbers until a page has no records; `cursor`: the cursor at "
        "`cursor_path` of each page until it is null or empty; `link`: the RFC 8288 "
        "`Link: <…>; rel=\"next\"` header until there is none"))
    page_param: str = Field(default="page", pattern=_PARAM)
    start: int = Field(default=1, ge=0, le=10**9, strict=True, description="First page number")
    cursor_param: str = Field(default="cursor", pattern=_PARAM)
    cursor_path: str = Field(default="", max_length=500, description="e.g. meta.next_cursor")
    max_pages: int = Field(default=1000, ge=1, le=sources.MAX_PAGES, strict=True)


class SourceCreate(_Strict):
    name: str = Field(pattern=sources.NAME.pattern, description="Unique; the jobs' source")
    url: str = Field(max_length=4000, description="The first page (http or https)")
    interval_seconds: int = Field(default=3600, ge=sources.MIN_INTERVAL,
                                  le=sources.MAX_INTERVAL, strict=True)
    records_path: str = Field(default="", max_length=500, description=(
        "Dotted path to the list of records in each page, e.g. `data.items`; empty: the page "
        "itself is the list"))
    pagination: Pagination = Field(default_factory=Pagination)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50, description=(
        "Sent with every request; not secret (shown in every answer)"))
    secret_header: str | None = Field(default=None, max_length=100, description=(
        "Header that carries `secret`, e.g. Authorization"))
    secret: str | None = Field(default=None, max_length=8000, description=(
        "Sent in `secret_header` to the source's own origin only; never shown again"))
    mapping_file: str | None = Field(default=None, max_length=4000, description=(
        "A mapping file (YAML or JSON) on the server, passed to each run's job"))
    enabled: bool = True


class SourceUpdate(_Strict):
    """Only the fields sent change. `secret_header` and `secret` null together remove them."""

    url: str | None = Field(default=None, max_length=4000)
    interval_seconds: int | None = Field(default=None, ge=sources.MIN_INTERVAL,
                                         le=sources.MAX_INTERVAL, strict=True)
    records_path: str | None = Field(default=None, max_length=500)
    pagination: Pagination | None = None
    headers: dict[str, str] | None = Field(default=None, max_length=50)
    secret_header: str | None = Field(default=None, max_length=100)
    secret: str | None = Field(default=None, max_length=8000)
    mapping_file: str | None = Field(default=None, max_length=4000)
    enabled: bool | None = None

    @field_validator("url", "interval_seconds", "records_path", "pagination", "headers",
                     "enabled")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields sent, and only those."""
        return self.model_dump(include=self.model_fields_set)


class SourcePublic(BaseModel):
    id: int
    name: str
    url: str
    interval_seconds: int
    records_path: str
    pagination: dict[str, Any]
    headers: dict[str, str]
    secret_header: str | None
    secret: Literal["set", "unset"]
    mapping_file: str | None
    enabled: bool
    running: bool = Field(description="A run holds the source right now")
    next_run_at: str | None
    last_run_at: str | None
    last_status: Literal["ok", "empty", "failed"] | None
    last_error: str | None = Field(description="The last failure (or a warning of a good run)")
    last_job_id: int | None
    last_records: int | None
    failures: int = Field(description="Failed runs in a row (30 s, 60 s, … backoff)")
    created_at: str | None


class RunOutcome(BaseModel):
    source: str
    status: Literal["ok", "empty", "failed"]
    records: int = Field(description="Records fetched into the run's file")
    pages: int
    job_id: int | None = Field(description="The ingest job of the file (GET /v1/ingest/jobs)")
    job_kind: Literal["queued", "already-queued", "duplicate"] | None = Field(description=(
        "`duplicate`: the same content was ingested before, nothing new to store"))
    error: str | None
    next_run_at: str | None


class _Envelope(BaseModel):
    status: Literal["success"]


class SourceEnvelope(_Envelope):
    data: SourcePublic


class SourceListEnvelope(_Envelope):
    data: list[SourcePublic]
    metadata: dict[str, int]


class RunEnvelope(_Envelope):
    data: RunOutcome


def _refusal(exc: sources.SourceError) -> ApiError:
    if isinstance(exc, sources.NotFound):
        return ApiError(404, "NOT_FOUND", str(exc))
    if isinstance(exc, sources.Conflict):
        return ApiError(409, "CONFLICT", str(exc))
    return ApiError(422, "VALIDATION_ERROR", str(exc))


def _summary(source: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a source (from its public view): header names but not
    their values, the URL without query values, whether a secret is set."""
    return {"name": source["name"], "url": audit.safe_url(source["url"]),
            "interval_seconds": source["interval_seconds"],
            "records_path": source["records_path"], "pagination": source["pagination"],
            "headers": sorted(source["headers"]), "secret_header": source["secret_header"],
            "secret": source["secret"], "mapping_file": source["mapping_file"],
            "enabled": source["enabled"]}


def _changes(before: dict[str, Any], after: dict[str, Any],
             sent: dict[str, Any]) -> dict[str, Any]:
    """Field by field, what a PATCH changed; headers as names added, removed or changed."""
    old, new = _summary(before), _summary(after)
    diff = {f: {"from": old[f], "to": new[f]} for f in old if f != "headers" and old[f] != new[f]}
    if before["headers"] != after["headers"]:
        b, a = before["headers"], after["headers"]
        diff["headers"] = {"added": sorted(set(a) - set(b)), "removed": sorted(set(b) - set(a)),
                           "changed": sorted(k for k in set(a) & set(b) if a[k] != b[k])}
    if sent.get("secret") and "secret" not in diff:
        diff["secret"] = {"from": old["secret"], "to": "replaced"}
    return diff


@router.get("", response_model=SourceListEnvelope, responses=errors(401, 403, 429))
def list_sources(ctx: Context, caller: Admin) -> Response:
    """Every source by name, with its last run and outcome."""
    found = sources.list_all(ctx.engine)
    return success(found, {"total": len(found)})


@router.post("", status_code=201, response_model=SourceEnvelope,
             responses=errors(401, 403, 409, 413, 422, 429))
def create_source(request: Request, ctx: Context, caller: Admin,
                  body: SourceCreate) -> Response:
    """Add a source; it is due at once. A taken name is 409 CONFLICT."""
    actor = audit_actor(request, caller)

    def audited(session: Session, made: dict[str, Any]) -> None:
        audit.write(session, actor, "source.create", "source", made["id"], _summary(made))

    try:
        made = sources.create(ctx.engine, **body.model_dump(), also=audited)
    except sources.SourceError as exc:
        raise _refusal(exc) from exc
    return success(made, status=201)


@router.get("/{source_id}", response_model=SourceEnvelope,
            responses=errors(401, 403, 404, 422, 429))
def get_source(ctx: Context, caller: Admin, source_id: SourceId) -> Response:
    try:
        return success(sources.get(ctx.engine, source_id))
    except sources.SourceError as exc:
        raise _refusal(exc) from exc


@router.patch("/{source_id}", response_model=SourceEnvelope,
              responses=errors(401, 403, 404, 413, 422, 429))
def update_source(request: Request, ctx: Context, caller: Admin, source_id: SourceId,
                  body: SourceUpdate) -> Response:
    """Change what is sent (enabled, interval, url, headers, secret, pagination…). Audited as
    `source.enable` or `source.disable` when `enabled` flips, else `source.update`; a change
    that changes nothing is not audited."""
    sent = body.changes()
    actor = audit_actor(request, caller)

    def audited(session: Session, before: dict[str, Any], after: dict[str, Any]) -> None:
        diff = _changes(before, after, sent)
        if diff:
            flipped = "enabled" in diff
            action = ("source.update" if not flipped
                      else "source.enable" if after["enabled"] else "source.disable")
            audit.write(session, actor, action, "source", after["id"],
                        {"name": after["name"], "changes": diff})

    try:
        after = sources.update(ctx.engine, source_id, sent, also=audited)
    except sources.SourceError as exc:
        raise _refusal(exc) from exc
    return success(after)


@router.delete("/{source_id}", response_model=SourceEnvelope,
               responses=errors(401, 403, 404, 422, 429))
def delete_source(request: Request, ctx: Context, caller: Admin,
                  source_id: SourceId) -> Response:
    """Remove a source (its jobs and ingested records stay)."""
    actor = audit_actor(request, caller)

    def audited(session: Session, gone: dict[str, Any]) -> None:
        audit.write(session, actor, "source.delete", "source", gone["id"], _summary(gone))

    try:
        gone = sources.delete(ctx.engine, source_id, also=audited)
    except sources.SourceError as exc:
        raise _refusal(exc) from exc
    return success(gone)


@router.post("/{source_id}/run", response_model=RunEnvelope,
             responses=errors(401, 403, 404, 409, 422, 429))
def run_source(request: Request, ctx: Context, caller: Admin, source_id: SourceId) -> Response:
    """Run the source now (also a disabled one) and answer with the outcome; the run's file
    is queued as an ingest job. 409 CONFLICT while a run holds the source."""
    try:
        outcome = run_now(ctx.engine, ctx.settings.resolved_landing_dir(), source_id)
    except sources.SourceError as exc:
        raise _refusal(exc) from exc
    except Busy as exc:
        raise ApiError(409, "CONFLICT", str(exc)) from exc
    ran = outcome.to_dict()
    audit.record(ctx.engine, audit_actor(request, caller), "source.run", "source", source_id,
                 {k: ran[k] for k in ("source", "status", "records", "pages", "job_id",
                                      "job_kind", "error")})
    return success(ran)
