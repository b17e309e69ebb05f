"""A queue worker: claim a job, run it through the Ingestor under a lease, report progress.

`recordbank serve` runs workers as threads of its own process (the embedded store allows one
process); `recordbank worker` runs them in a process of their own, against PostgreSQL and a
ClickHouse server, on any number of machines (ingest/queue.py makes the claims safe).

While a job runs, a heartbeat thread renews the lease and publishes the latest progress about
every half second (what GET /v1/ingest/jobs/{id}/events streams). At each stage boundary the
Ingestor asks the queue whether the job is still ours and still wanted: a lost lease stops the
job without touching anything (another worker resumes it and cleans up); a cancel request stops
it cleanly (its work is removed, nothing is published).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recordbank.ingest import landed_files, queue
from recordbank.ingest.errors import IngestError, JobCancelled, LeaseLost
from recordbank.ingest.pipeline import IngestOptions, Ingestor, IngestResult, Progress
from recordbank.runtime import Runtime

log = logging.getLogger(__name__)

# Errors about the file itself: running again gives the same answer, so they are not retried.
PERMANENT_PREFIXES = ("format:", "file:", "dump:", "mapping:", "job:")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def retryable(code: str | None) -> bool:
    return not (code or "").startswith(PERMANENT_PREFIXES)


def options_from_json(raw: dict[str, Any]) -> IngestOptions:
    """The job's stored options (as ingest wrote them) back into IngestOptions; unknown keys
    (a newer version's, or the CLI's bookkeeping such as `worker`) are ignored."""
    known = {f.name for f in dataclasses.fields(IngestOptions)}
    values = {k: v for k, v in raw.items() if k in known and v is not None}
    if "mapping_file" in values:
        values["mapping_file"] = Path(values["mapping_file"])
    return IngestOptions(**values)


class _Heartbeat:
    """Renews the lease and publishes progress every `interval` seconds, in its own thread."""

    def __init__(self, worker: Worker, job_id: int) -> None:
        self.worker, self.job_id = worker, job_id
        self.started = time.monotonic()
        self.progress: dict[str, Any] = {"stage": "claimed", "rows": 0, "expected": None,
                                         "rejected": 0, "rows_per_s": 0.0,
                                         "updated_at": _iso()}
        self.lost = threading.Event()
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"lease-{job_id}")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def update(self, p: Progress) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.progress = {"stage": p.stage, "rows": p.rows, "expected": p.expected,
                         "rejected": p.rejected, "rows_per_s": round(p.rows / elapsed, 1),
                         "updated_at": _iso()}

    def beat(self) -> queue.Lease:
        lease = queue.renew_lease(self.worker.rt.engine, self.job_id, self.worker.name,
                                  lease_seconds=self.worker.lease_seconds,
                                  progress=self.progress)
        if not lease.held:
            self.lost.set()
        if lease.cancel_requested:
            self.cancelled.set()
        return lease

    def _run(self) -> None:
        while not self._stop.wait(self.worker.heartbeat_seconds):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - the DB may be back at the next beat
                log.warning("job %s: renewing the lease failed: %s", self.job_id, exc)


def _iso() -> str:
    return datetime.now(UTC).isoformat()


class Worker:
    def __init__(self, runtime: Runtime, *, name: str | None = None,
                 lease_seconds: float = 30.0, poll_seconds: float = 1.0) -> None:
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("lease_seconds and poll_seconds must be positive")
        self.rt = runtime
        self.name = name or worker_name()
        self.lease_seconds = lease_seconds
        # progress reaches the DB (and SSE watchers) within half a second of a report
        self.heartbeat_seconds = min(0.5, lease_seconds / 3)
        self.poll_seconds = poll_seconds

    def run_once(self) -> int | None:
        """Claim the next due job and run it; its id, or None when nothing was due."""
        claimed = queue.claim_next(self.rt.engine, self.name, lease_seconds=self.lease_seconds)
        if claimed is None:
            return None
        self.run_claimed(claimed)
        return claimed.id

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # noqa: BLE001 - a worker outlives one bad job or DB outage
                log.exception("ingest worker %s: claiming or running a job failed", self.name)
                ran = None
            if ran is None:
                stop.wait(self.poll_seconds)

    def run_claimed(self, claimed: queue.ClaimedJob) -> str:
        """Run a job this worker holds; returns the job's status after (or "lost")."""
        engine = self.rt.engine
        with _Heartbeat(self, claimed.id) as heart:

            def checkpoint() -> None:
                lease = heart.beat()
                if not lease.held:
                    raise LeaseLost(f"job {claimed.id} is held by another worker now")
                if lease.cancel_requested:
                    raise JobCancelled("cancelled on request")

            ingestor = Ingestor(self.rt, progress=heart.update, checkpoint=checkpoint)
            try:
                result = self._ingest(ingestor, claimed)
            except LeaseLost as exc:
                log.warning("%s; stopping without touching it", exc)
                return "lost"
            # the last word for watchers, written with the outcome
            heart.update(Progress(claimed.id, "done" if result.status == "succeeded" else
                                  result.status, result.rows_read, result.rows_read,
                                  result.quarantined))
        final = heart.progress
        if result.status == "succeeded":
            status = queue.release(engine, claimed.id, self.name, outcome="succeeded",
                                   progress=final)
            if status == "succeeded":  # the landed copy is not needed any more
                landed_files.drop_quietly(engine, self.rt.settings, claimed.id)
            return status
        if result.error_code == JobCancelled.code:
            return queue.release(engine, claimed.id, self.name, outcome="cancelled",
                                 progress=final)
        return queue.release(engine, claimed.id, self.name, outcome="failed",
                             error=result.error, error_code=result.error_code,
                             retryable=retryable(result.error_code), progress=final)

    def _ingest(self, ingestor: Ingestor, claimed: queue.ClaimedJob) -> IngestResult:
        path = Path(claimed.path)
        try:
            options = options_from_json(claimed.options)
            if not path.is_file():
                raise IngestError(f"the file {path} is not in the landing folder any more")
        except (IngestError, TypeError, ValueError) as exc:
            return IngestResult(claimed.id, claimed.file_name, "failed", error=str(exc),
                                error_code="file:missing" if isinstance(exc, IngestError)
                                else "job:bad-options")
        return ingestor.run_job(claimed.id, path, source=claimed.source,
                                checksum=claimed.checksum or "", options=options,
                                resume=claimed.resume)


class WorkerPool:
    """N worker threads in this process (what `recordbank serve` runs)."""

    def __init__(self, runtime: Runtime, threads: int, **worker_args: Any) -> None:
        self.stop = threading.Event()
        self.workers = [Worker(runtime, **worker_args) for _ in range(max(0, threads))]
        self._threads = [threading.Thread(target=w.run_forever, args=(self.stop,),
                                          daemon=True, name=f"ingest-worker-{i}")
                         for i, w in enumerate(self.workers)]

    def start(self) -> WorkerPool:
        for t in self._threads:
            t.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop claiming; a job still running keeps its thread (a daemon) until the process
        ends, and its lease then runs out so that the next start resumes it."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
