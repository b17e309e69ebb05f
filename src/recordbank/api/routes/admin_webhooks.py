"""Admin API for webhooks: endpoints (secret shown once) and their deliveries.

Adding and deleting a webhook is in the admin audit log (GET /v1/admin/audit): its URL without
query values, its events and threshold, never its signing secret."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from recordbank.accounts import audit
from recordbank.api.deps import Admin, Context
from recordbank.api.errors import ApiError
from recordbank.api.responses import success
from recordbank.api.routes.admin_accounts import audit_actor
from recordbank.api.schemas import errors
from recordbank.api.schemas_admin import plain_text
from recordbank.notify import dispatch, webhooks
from recordbank.notify.models import EVENTS

router = APIRouter(prefix="/v1/admin/webhooks", tags=["admin"])

Event = Literal["job.completed", "job.failed", "balance.low"]
assert set(Event.__args__) == set(EVENTS)  # type: ignore[attr-defined]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL that receives "
                     "POSTs signed with X-Recordbank-Signature")
    events: list[Event] = Field(min_length=1, max_length=len(EVENTS))
    balance_threshold: int | None = Field(default=None, ge=1, le=2**62, description=(
        "balance.low fires when a user's balance goes below this many credits"))
    description: str = Field(default="", max_length=500)

    @field_validator("url", "description")
    @classmethod
    def _printable(cls, value: str, info: ValidationInfo) -> str:
        """No control characters (PostgreSQL cannot store NUL; nobody means them)."""
        return plain_text(value, str(info.field_name), lines=info.field_name == "description")


class Envelope(BaseModel):
    status: Literal["success"]
    data: Any
    metadata: dict[str, Any] | None = None


def _iso(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


def _summary(hook: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a webhook: never its secret (describe() has none)."""
    return {"url": audit.safe_url(hook["url"]), "events": list(hook["events"]),
            "balance_threshold": hook["balance_threshold"], "description": hook["description"]}


@router.post("", status_code=201, response_model=Envelope,
             responses=errors(400, 401, 403, 422, 429))
async def create(request: Request, ctx: Context, caller: Admin, body: WebhookCreate) -> Response:
    """Add a webhook; its signing secret is in this answer only."""
    actor = audit_actor(request, caller)

    def audited(session: Session, hook: dict[str, Any]) -> None:
        audit.write(session, actor, "webhook.create", "webhook", hook["id"], _summary(hook))

    try:
        made = await run_in_threadpool(
            webhooks.create_webhook, ctx.engine, body.url, list(body.events),
            balance_threshold=body.balance_threshold, description=body.description,
            also=audited)
    except webhooks.WebhookError as exc:
        raise ApiError(400, "INVALID_QUERY", str(exc)) from exc
    return success({"id": made.id, "secret": made.secret,
                    "signature": "X-Recordbank-Signature: sha256=HMAC(secret, "
                                 "'<X-Recordbank-Timestamp>.<body>')"}, status=201)


@router.get("", response_model=Envelope, responses=errors(401, 403, 429))
async def list_all(ctx: Context, _admin: Admin) -> Response:
    rows = await run_in_threadpool(webhooks.list_webhooks, ctx.engine)
    return success([_iso(r) for r in rows], {"total": len(rows)})


@router.delete("/{webhook_id}", response_model=Envelope, responses=errors(401, 403, 404, 429))
async def remove(request: Request, ctx: Context, caller: Admin,
                 webhook_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    actor = audit_actor(request, caller)

    def audited(session: Session, hook: dict[str, Any]) -> None:
        audit.write(session, actor, "webhook.delete", "webhook", webhook_id, _summary(hook))

    if not await run_in_threadpool(webhooks.delete_webhook, ctx.engine, webhook_id,
                                   also=audited):
        raise ApiError(404, "NOT_FOUND", f"no webhook {webhook_id}")
    return success({"id": webhook_id, "deleted": True})


@router.get("/deliveries", response_model=Envelope, responses=errors(401, 403, 422, 429))
async def list_deliveries(
    ctx: Context, _admin: Admin,
    webhook_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Every delivery, newest first: event, payload, attempts, last answer or error."""
    rows, total = await run_in_threadpool(dispatch.deliveries, ctx.engine,
                                          webhook_id=webhook_id, status=status, limit=limit,
                                          offset=offset)
    return success([_iso(r) for r in rows], {"total": total, "limit": limit, "offset": offset,
                                             "returned": len(rows)})
