"""Request dependencies: the app context, and the caller (authenticated and rate limited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from recordbank.api.auth import Principal, read_key, verify
from recordbank.api.context import AppContext
from recordbank.api.errors import ApiError


async def get_context(request: Request) -> AppContext:
    # async: a sync dependency would cost a threadpool hop on every request
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(get_context)]


def set_headers(request: Request, headers: dict[str, Any]) -> None:
    """Headers the middleware adds to whatever response this request ends with."""
    request.state.response_headers = {**getattr(request.state, "response_headers", {}),
                                      **headers}


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="Your API key (rb_live_…)")
bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token")


async def get_principal(
    request: Request,
    ctx: Context,
    x_api_key: Annotated[str | None, Security(api_key_header)] = None,
    authorization: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
) -> Principal:
    key = read_key(authorization.credentials if authorization else None, x_api_key)
    if key is None:
        raise ApiError(401, "MISSING_API_KEY",
                       "send your API key in the X-API-Key header (or Authorization: Bearer)")
    client = request.client.host if request.client else "unknown"
    blocked = await ctx.limiter.check_failed_auth(client)
    if not blocked.allowed:
        raise ApiError(429, "RATE_LIMITED",
                       f"too many failed authentications; retry in {blocked.retry_after} s",
                       headers=blocked.headers())
    try:
        cached = ctx.keys.lookup_cached(key)
        principal = cached if cached is not None else await run_in_threadpool(
            verify, ctx.keys, ctx.engine, key)
    except ApiError as exc:
        if exc.status == 401:
            await ctx.limiter.hit_failed_auth(client)
        raise
    request.state.key_id = principal.key_id
    request.state.user_id = principal.user_id
    decision = await ctx.limiter.hit_key(principal.key_id, principal.rate_limit)
    set_headers(request, decision.headers())
    if not decision.allowed:
        raise ApiError(429, "RATE_LIMITED",
                       f"rate limit of {decision.limit} requests exceeded; "
                       f"retry in {decision.retry_after} s", headers=decision.headers())
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


async def require_admin(caller: Caller) -> Principal:
    """The admin API: the caller's key must be an admin key (admin role or admin scope)."""
    if not caller.is_admin:
        raise ApiError(403, "FORBIDDEN", "the admin API needs an admin API key")
    return caller


Admin = Annotated[Principal, Depends(require_admin)]
