"""One error envelope for every failure, with a stable code per failure (design.md)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

# HTTP status -> the code used when nothing more specific is known.
DEFAULT_CODES = {
    400: "INVALID_QUERY", 401: "INVALID_API_KEY", 402: "INSUFFICIENT_CREDITS",
    403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
    429: "RATE_LIMITED", 500: "INTERNAL_ERROR", 503: "STORE_UNAVAILABLE", 504: "QUERY_TIMEOUT",
}

# What FastAPI raises (as a 400) for a body it could not decode at all.
FASTAPI_BODY_ERROR = "There was an error parsing the body"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return orjson.dumps({"status": "error", "error": error})


def error_response(status: int, code: str, message: str, *,
                   headers: dict[str, str] | None = None,
                   details: dict[str, Any] | None = None) -> Response:
    return Response(error_body(code, message, details), status_code=status,
                    media_type="application/json", headers=headers)


def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    request.state.error_code = exc.code
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers,
                          details=exc.details)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_ERROR:
        # A body that is not UTF-8: the same 422 as a body that is not JSON (FastAPI says 400).
        request.state.error_code = "VALIDATION_ERROR"
        return error_response(422, "VALIDATION_ERROR",
                              "body: the request body is not JSON in UTF-8")
    code = DEFAULT_CODES.get(exc.status_code, "ERROR")
    request.state.error_code = code
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    request.state.error_code = "VALIDATION_ERROR"
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append({"location": where, "message": str(err.get("msg", ""))})
    message = "; ".join(f"{p['location']}: {p['message']}" for p in problems[:5])
    return error_response(422, "VALIDATION_ERROR", message or "invalid request",
                          details={"errors": problems})


def _unexpected(request: Request, exc: Exception) -> Response:
    request.state.error_code = "INTERNAL_ERROR"
    return error_response(500, "INTERNAL_ERROR",
                          f"internal error (request {getattr(request.state, 'request_id', '')})")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
