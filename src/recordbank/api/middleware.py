"""Per-request plumbing as plain ASGI (cheaper than BaseHTTPMiddleware on the hot path):
request id, body size limit, headers set by the handlers, and one usage-log row per request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from recordbank.api.errors import error_body
from recordbank.usage.log import UsageEntry, UsageLog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGGED_PREFIX = "/v1/"
BODY_KEPT = 4096  # bytes of a JSON body kept as the logged parameters
# Routes that stream big bodies and enforce their own limit; their bodies are not logged.
OWN_BODY_LIMIT = frozenset({"/v1/ingest/uploads"})


class PayloadTooLarge(Exception):
    pass


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 64 and text.replace("-", "").isalnum():
                return text
    return uuid.uuid4().hex


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, usage: UsageLog, max_body: int) -> None:
        self.app = app
        self.usage = usage
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = scope.get("headers", [])
        state = scope.setdefault("state", {})
        request_id = _request_id(headers)
        state["request_id"] = request_id
        status = 500
        kept = bytearray()
        seen = 0
        own_limit = scope.get("path") in OWN_BODY_LIMIT
        max_body, body_kept = (float("inf"), 0) if own_limit else (self.max_body, BODY_KEPT)

        length = next((v for k, v in headers if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > max_body:
            await self._too_large(send, request_id)
            status = 413
            state["error_code"] = "PAYLOAD_TOO_LARGE"
            self._log(scope, state, status, started, kept)
            return

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                if seen > max_body:
                    raise PayloadTooLarge
                if len(kept) < body_kept:
                    kept.extend(body[: body_kept - len(kept)])
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                present = list(message.get("headers", []))
                names = {name.lower() for name, _ in present}
                extra = [(b"x-request-id", request_id.encode())]
                for name, value in state.get("response_headers", {}).items():
                    encoded = name.lower().encode()
                    if encoded not in names:  # the handler's own value wins
                        extra.append((encoded, str(value).encode("latin-1")))
                message["headers"] = present + extra
            await send(message)

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except PayloadTooLarge:
            status = 413
            state["error_code"] = "PAYLOAD_TOO_LARGE"
            await self._too_large(send, request_id)
        finally:
            self._log(scope, state, status, started, kept)

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = error_body("PAYLOAD_TOO_LARGE",
                          f"request body over the limit of {self.max_body} bytes")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"x-request-id", request_id.encode())]})
        await send({"type": "http.response.body", "body": body})

    def _log(self, scope: Scope, state: dict[str, Any], status: int, started: float,
             kept: bytearray) -> None:
        path: str = scope.get("path", "")
        if not path.startswith(LOGGED_PREFIX):
            return
        # The route's template (/v1/records/{record_id}) so usage groups by endpoint.
        template = getattr(scope.get("route"), "path", None) or path
        params: dict[str, Any] = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                keep_blank_values=True))
        params.update({k: str(v) for k, v in (scope.get("path_params") or {}).items()})
        if kept:
            try:
                body = orjson.loads(bytes(kept))
                params["body"] = body
            except orjson.JSONDecodeError:
                params["body"] = f"<{len(kept)} bytes>"
        client = scope.get("client")
        self.usage.record(UsageEntry(
            request_id=state.get("request_id", ""),
            key_id=state.get("key_id"),
            user_id=state.get("user_id"),
            method=scope.get("method", ""),
            path=template,
            params=params or None,
            status=status,
            error_code=state.get("error_code"),
            rows_returned=int(state.get("rows_returned", 0)),
            credits_charged=int(state.get("credits_charged", 0)),
            duration_ms=(time.perf_counter() - started) * 1000,
            client=client[0] if client else None,
        ))
