"""The reference for the stack's own overhead: FastAPI + uvicorn and nothing of ours.

`python bench/bare_app.py --port P` serves, with the same uvicorn settings as `recordbank serve`
(uvicorn.run(app, host, port) defaults: httptools and uvloop when installed, one process):
  GET /bare/async   a small JSON shaped like the /v1/credits answer, from an `async def`
  GET /bare/sync    the same from a plain `def` (run in the threadpool, as /v1/credits is)
  GET /bare/stream?size=N&chunk=C   N bytes of CSV-like lines in C-byte chunks from a sync
                    generator (StreamingResponse, as /v1/export) — the ceiling of HTTP streaming
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response, StreamingResponse

app = FastAPI()

_ANSWER = {
    "status": "success",
    "data": {"balance": 999_999_000, "held": 0, "open_holds": [],
             "grants": [{"id": 1, "amount": 1_000_000_000, "remaining": 999_999_000,
                         "expires_at": None, "created_at": "2026-11-22T10:00:00+00:00"}]},
    "metadata": {"user_id": 1, "request_id": "0123456789abcdef0123456789abcdef"},
}


def _answer() -> Response:
    return Response(orjson.dumps(_ANSWER), media_type="application/json",
                    headers={"X-Credits-Remaining": "999999000"})


@app.get("/bare/async")
async def bare_async() -> Response:
    return _answer()


@app.get("/bare/sync")
def bare_sync() -> Response:
    return _answer()


_LINE = (b"0b9a6c1e-5f7d-4c3b-9a2e-1d4f6b8c0a3e,user123456@fill.example,Person 123456,"
         b"+14150123456,1 Main St,Springfield,US,2024-05-17,active\n")


@app.get("/bare/stream")
def bare_stream(size: int = 100_000_000, chunk: int = 4_000_000) -> StreamingResponse:
    block = _LINE * max(1, chunk // len(_LINE))

    def body() -> Iterator[bytes]:
        left = size
        while left > 0:
            piece = block if left >= len(block) else block[:left]
            left -= len(piece)
            yield piece

    return StreamingResponse(body(), media_type="text/csv")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
