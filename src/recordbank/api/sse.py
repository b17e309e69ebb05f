"""Server-Sent Events of one ingest job, made by polling its row (the worker may run in another
process or on another machine, so the relational DB is the one place that knows).

Events, each `event: NAME`, an `id:` and one line of JSON `data:`:

- `started`: the job began an attempt (again after a retry wait): the job summary.
- `progress`: whenever the worker's progress report changes, on a change of status, and at
  least every PROGRESS_EVERY seconds while the job runs: the progress report (stage, rows,
  expected, rejected, rows_per_s, updated_at) plus `id`, `status`, `attempts` and `counts`.
- `completed`, `failed` or `cancelled`: the job summary; the stream ends. A job already finished
  when the stream opens sends this event at once.

While the job waits in the queue, a comment line every KEEPALIVE seconds keeps proxies from
closing the connection. The stream stops as soon as the client goes away.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import anyio
import orjson

POLL_SECONDS: Final = 0.2
PROGRESS_EVERY: Final = 0.8  # + one poll interval at most: an event at least every second
KEEPALIVE: Final = 10.0
FINAL_EVENTS: Final = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}
MEDIA_TYPE: Final = "text/event-stream"
HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Load = Callable[[], Awaitable[dict[str, Any] | None]]
Disconnected = Callable[[], Awaitable[bool]]


def event(name: str, data: dict[str, Any], event_id: int) -> bytes:
    return (f"event: {name}\nid: {event_id}\ndata: ".encode() + orjson.dumps(data) + b"\n\n")


def progress_data(job: dict[str, Any]) -> dict[str, Any]:
    report = dict(job.get("progress") or {"stage": job.get("stage"), "rows": 0,
                                           "expected": None, "rejected": 0,
                                           "rows_per_s": 0.0, "updated_at": None})
    report.update(id=job["id"], status=job["status"], attempts=job.get("attempts"),
                  counts=job.get("counts"))
    return report


async def job_events(load: Load, disconnected: Disconnected, *, live: Load | None = None,
                     poll: float = POLL_SECONDS, every: float = PROGRESS_EVERY,
                     keepalive: float = KEEPALIVE) -> AsyncIterator[bytes]:
    """The event stream of the job that `load` reads (None: it is gone, the stream ends).

    `live` reads only what changes while a job runs (status, attempts, progress, counts); it
    is what the stream polls, and `load` runs only for the summaries of started and final
    events. Without it, every poll uses `load`.
    """
    poll_job = live or load
    seq = 0
    started_attempt: int | None = None
    prev_attempts: int | None = None
    last_progress: Any = object()
    last_status: str | None = None
    last_sent = time.monotonic()
    while not await disconnected():
        job = await poll_job()
        if job is None:
            return
        now = time.monotonic()
        status = job["status"]
        out: list[tuple[str, dict[str, Any]]] = []
        final = FINAL_EVENTS.get(status)
        attempts = int(job.get("attempts") or 0)
        # A final status whose attempt began since the last poll ran too fast to be seen.
        began = prev_attempts is not None and attempts > prev_attempts
        if (status == "running" or (final is not None and began)) \
                and started_attempt != attempts:
            started_attempt = attempts
            out.append(("started", job))
        if final is not None:
            out.append((final, job))
        elif (status == "running" and (job.get("progress") != last_progress
                                       or now - last_sent >= every or out)) \
                or (last_status is not None and status != last_status):
            out.append(("progress", progress_data(job)))
            last_progress = job.get("progress")
        if live is not None and any(name != "progress" for name, _ in out):
            full = await load()
            if full is None:
                return
            out = [(name, data if name == "progress" else full) for name, data in out]
        for name, data in out:
            seq += 1
            yield event(name, data, seq)
            last_sent = now
        if final is not None:
            return
        if not out and now - last_sent >= keepalive:
            yield b": waiting\n\n"
            last_sent = now
        last_status, prev_attempts = status, attempts
        await anyio.sleep(poll)
