"""Admin API for accounts: users, their keys and credits, and the admin audit log.

Every route needs an admin key (403 FORBIDDEN otherwise). Every change is written to the
admin_audit table in the change's own transaction; plaintext keys appear in exactly one
answer (issue or rotate) and nowhere else: not in the audit log, not in an idempotent replay,
not in any later read.
Handlers are plain functions: FastAPI runs them on its worker threads, where the blocking DB
calls belong.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response

from recordbank.accounts import admin as accounts
from recordbank.accounts import audit
from recordbank.accounts.users import DEFAULT_SCOPES, AccountError
from recordbank.api import idempotency
from recordbank.api.auth import Principal
from recordbank.api.deps import Admin, Context, set_headers
from recordbank.api.errors import ApiError
from recordbank.api.responses import success
from recordbank.api.schemas import errors
from recordbank.api.schemas_admin import (
    NO_CONTROL,
    Action,
    AuditListEnvelope,
    CreditChangeEnvelope,
    CreditChangeRequest,
    IssuedKeyEnvelope,
    KeyCreate,
    KeyEnvelope,
    Role,
    Status,
    UserCreate,
    UserDetailEnvelope,
    UserEnvelope,
    UserListEnvelope,
    UserUpdate,
)
from recordbank.billing import ledger

router = APIRouter(prefix="/v1/admin", tags=["admin"])

MAX_ID = 2**63 - 1
_TARGET = re.compile(r"^(user|key|source|webhook)(?::(\d{1,18}))?$")

UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="User id")]
KeyId = Annotated[int, Path(ge=1, le=MAX_ID, description="API key id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IdempotencyKey = Annotated[str | None, Header(
    description="Retrying with the same key returns the first answer; the change is applied "
                "once")]


def audit_actor(request: Request, caller: Principal) -> audit.Actor:
    """Who acts, for the audit log: the admin's user and key, and the request id."""
    return audit.Actor(caller.user_id, caller.key_id,
                       str(getattr(request.state, "request_id", "")))


def _refusal(exc: AccountError) -> ApiError:
    if isinstance(exc, accounts.NotFound):
        return ApiError(404, "NOT_FOUND", str(exc))
    if isinstance(exc, accounts.Conflict):
        return ApiError(409, "CONFLICT", str(exc))
    return ApiError(422, "VALIDATION_ERROR", str(exc))


def _page(total: int, limit: int, offset: int, returned: int) -> dict[str, int]:
    return {"total": total, "limit": limit, "offset": offset, "returned": returned}


@router.post("/users", status_code=201, response_model=UserEnvelope,
             responses=errors(401, 403, 409, 413, 422, 429))
def create_user(request: Request, ctx: Context, caller: Admin, body: UserCreate) -> Response:
    """Create a user (no keys, no credits yet). A taken email is 409 CONFLICT."""
    try:
        user = accounts.create_user(ctx.engine, audit_actor(request, caller), body.email,
                                    name=body.name, role=body.role, status=body.status,
                                    rate_limit=body.rate_limit)
    except AccountError as exc:
        raise _refusal(exc) from exc
    return success(user, status=201)


@router.get("/users", response_model=UserListEnvelope, responses=errors(401, 403, 422, 429))
def list_users(
    ctx: Context, caller: Admin,
    q: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL,
                                   description="Part of the email or name (any case)")] = None,
    role: Role | None = None,
    status: Status | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Users by id, searched and filtered."""
    users, total = accounts.search_users(ctx.engine, q=q, role=role, status=status,
                                         limit=limit, offset=offset)
    return success(users, _page(total, limit, offset, len(users)))


@router.get("/users/{user_id}", response_model=UserDetailEnvelope,
            responses=errors(401, 403, 404, 422, 429))
def get_user(ctx: Context, caller: Admin, user_id: UserId) -> Response:
    """A user with all its keys (never their hashes) and its credit balance."""
    try:
        user = accounts.get_user(ctx.engine, user_id)
        summary = ctx.credit_view.summary(user_id)
    except AccountError as exc:
        raise _refusal(exc) from exc
    except ledger.UnknownUser as exc:
        raise ApiError(404, "NOT_FOUND", f"no user with id {user_id}") from exc
    user["keys"] = accounts.list_keys(ctx.engine, user_id)
    user["credits"] = {"balance": summary.balance, "held": summary.held}
    return success(user)


@router.patch("/users/{user_id}", response_model=UserEnvelope,
              responses=errors(401, 403, 404, 409, 413, 422, 429))
def update_user(request: Request, ctx: Context, caller: Admin, user_id: UserId,
                body: UserUpdate) -> Response:
    """Change name, role, status or rate limit. `status: disabled` refuses every key of the
    user within a second; you cannot disable or demote yourself (409)."""
    try:
        user = accounts.update_user(ctx.engine, audit_actor(request, caller), user_id,
                                    body.changes())
    except AccountError as exc:
        raise _refusal(exc) from exc
    return success(user)


def _apply_credits(request: Request, ctx: Context, caller: Principal, user_id: int,
                   body: CreditChangeRequest, applied: list[bool]) -> Response:
    """Grant or adjust, with its audit row in the same transaction; `applied` gets an entry
    once that transaction has committed."""
    actor = audit_actor(request, caller)
    try:
        data = accounts.change_credits(ctx.engine, actor, user_id, body.amount,
                                       reason=body.reason, expires_at=body.expires_at,
                                       request_id=actor.request_id)
        applied.append(True)
    except ledger.UnknownUser as exc:
        raise ApiError(404, "NOT_FOUND", f"no user with id {user_id}") from exc
    except ledger.InsufficientCredits as exc:
        raise ApiError(409, "CONFLICT", f"cannot take {-body.amount} credits: {exc}",
                       details={"required": exc.required, "available": exc.available}) from exc
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "VALIDATION_ERROR", str(exc)) from exc
    return success(data, status=201)


@router.post("/users/{user_id}/credits", status_code=201, response_model=CreditChangeEnvelope,
             responses=errors(400, 401, 403, 404, 409, 413, 422, 429))
def change_credits(request: Request, ctx: Context, caller: Admin, user_id: UserId,
                   body: CreditChangeRequest,
                   idempotency_key: IdempotencyKey = None) -> Response:
    """Grant credits (positive amount, optionally expiring) or take them back (negative; never
    below zero: 409 CONFLICT with Required/Available). With an Idempotency-Key a retry is
    answered from the first success and applied once; the key with another body is 409."""
    applied: list[bool] = []
    if idempotency_key is None:
        return _apply_credits(request, ctx, caller, user_id, body, applied)
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    found = idempotency.claim(ctx.engine, caller.user_id, idempotency_key,
                              idempotency.fingerprint("POST", request.url.path, "", canonical))
    if isinstance(found, idempotency.StoredAnswer):
        set_headers(request, {"Idempotent-Replayed": "true"})
        return Response(found.body, status_code=found.status_code,
                        media_type=found.media_type, headers=found.headers)
    try:
        response = _apply_credits(request, ctx, caller, user_id, body, applied)
    except BaseException:
        # Free the key only if the ledger did not change: a retry must never apply it twice
        # (after a failure past that point the key stays "in progress", 409).
        if not applied:
            idempotency.abandon(ctx.engine, found)
        raise
    idempotency.complete(ctx.engine, found, idempotency.StoredAnswer(
        response.status_code, "application/json", {}, bytes(response.body)))
    return response


@router.post("/users/{user_id}/keys", status_code=201, response_model=IssuedKeyEnvelope,
             responses=errors(401, 403, 404, 413, 422, 429))
def create_key(request: Request, ctx: Context, caller: Admin, user_id: UserId,
               body: KeyCreate) -> Response:
    """Issue a key. The plaintext is in this answer and never again (only its hash is kept)."""
    scopes = list(dict.fromkeys(body.scopes if body.scopes is not None else DEFAULT_SCOPES))
    if body.admin and "admin" not in scopes:
        scopes.append("admin")
    try:
        issued = accounts.issue_key(ctx.engine, audit_actor(request, caller), user_id,
                                    name=body.name, scopes=scopes, expires_at=body.expires_at)
    except AccountError as exc:
        raise _refusal(exc) from exc
    return success(accounts.issued_dict(issued, ctx.engine), status=201)


@router.post("/keys/{key_id}/rotate", status_code=201, response_model=IssuedKeyEnvelope,
             responses=errors(401, 403, 404, 409, 422, 429))
def rotate_key(request: Request, ctx: Context, caller: Admin, key_id: KeyId) -> Response:
    """A new key with the same user, name, scopes and expiry; the old key is revoked in the
    same transaction (refused everywhere within a second). A revoked or expired key cannot be
    rotated (409)."""
    try:
        rotated = accounts.rotate_key(ctx.engine, audit_actor(request, caller), key_id)
    except AccountError as exc:
        raise _refusal(exc) from exc
    data = {**accounts.issued_dict(rotated.issued, ctx.engine),
            "replaced_key_id": rotated.replaced_key_id}
    return success(data, status=201)


@router.delete("/keys/{key_id}", response_model=KeyEnvelope,
               responses=errors(401, 403, 404, 422, 429))
def revoke_key(request: Request, ctx: Context, caller: Admin, key_id: KeyId) -> Response:
    """Revoke a key (refused everywhere within a second). Revoking twice is not an error."""
    try:
        key, revoked_now = accounts.revoke_key(ctx.engine, audit_actor(request, caller), key_id)
    except AccountError as exc:
        raise _refusal(exc) from exc
    return success(key, {"already_revoked": not revoked_now})


@router.get("/audit", response_model=AuditListEnvelope, responses=errors(401, 403, 422, 429))
def audit_log(
    ctx: Context, caller: Admin,
    actor: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                       description="The acting admin's user id")] = None,
    action: Action | None = None,
    target: Annotated[str | None, Query(
        pattern=_TARGET.pattern,
        description="`user`, `key`, `source`, `webhook`, or one of them: `user:12`, `key:7`, "
                    "`source:3`, `webhook:5`")] = None,
    since: Annotated[datetime | None, Query(description="ISO date or time, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO date or time, exclusive")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Admin actions, newest first."""
    target_type: str | None = None
    target_id: int | None = None
    if target is not None:
        match = _TARGET.match(target)
        if match is None:  # the Query pattern already refused it; kept for direct calls
            raise ApiError(422, "VALIDATION_ERROR",
                           "target must look like user:12, key:7, source:3 or webhook:5")
        target_type = match.group(1)
        target_id = int(match.group(2)) if match.group(2) else None
    rows, total = audit.search(ctx.engine, actor_user_id=actor, action=action,
                               target_type=target_type, target_id=target_id, since=since,
                               until=until, limit=limit, offset=offset)
    return success(rows, _page(total, limit, offset, len(rows)))
