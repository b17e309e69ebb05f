"""The ingest queue: jobs wait in the relational DB and workers take them under a lease.

One content, one live job: a partial unique index (migration 0008) allows one queued or
running job per checksum, so simultaneous enqueues of the same bytes queue one job and the
others answer "already-queued" with it. A worker claims the oldest due job in one statement
(db/claim.py: UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING on PostgreSQL,
so any number of workers on any machines never take the same job; on SQLite the one statement
is atomic by itself). The claim sets a lease (`lease_owner`, `lease_expires_at`) that the
worker renews while it works; a job whose lease ran out (its worker died) is due again and the
next claim resumes it. Every write that a worker makes about its job names the worker, so one
that lost its lease changes nothing.

Failures go back to the queue with exponential backoff until `max_attempts`, then stay failed
with their reason (the dead letter). Cancelling a queued job ends it at once; a running one is
asked to stop (`cancel_requested`) and its worker stops at the next progress report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recordbank.db import claim
from recordbank.db.models import IngestedFile, Job
from recordbank.db.session import session_scope
from recordbank.ingest.jobs import job_event
from recordbank.notify import webhooks

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0
DEFAULT_ATTEMPTS = 5
ACTIVE = ("queued", "running")  # at most one such job per checksum (a unique index)
ENQUEUE_ROUNDS = 5


def _now(now: datetime | None = None) -> datetime:
    return now or datetime.now(UTC)


@dataclass(frozen=True)
class Enqueued:
    job_id: int
    kind: str  # "queued" | "already-queued" (same content waiting or running) | "duplicate"
    previous_job: int | None = None  # the job that already ingested this content


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    path: str
    file_name: str
    source: str
    checksum: str | None
    options: dict[str, Any]
    attempts: int  # including this one
    resume: bool  # an earlier attempt may have left rows or work tables behind


@dataclass(frozen=True)
class Lease:
    held: bool  # False: another worker holds the job now (or it ended): stop, write nothing
    cancel_requested: bool


def enqueue(engine: Engine, *, path: str, file_name: str, source: str, checksum: str,
            size: int, options: dict[str, Any], origin: str,
            max_attempts: int = DEFAULT_ATTEMPTS) -> Enqueued:
    """Queue a file for ingestion, once per content checksum.

    Content already ingested answers with a finished job that points at the one that did it
    (as `recordbank ingest` does); content queued or running answers with that job. The
    database makes "once" hold under any concurrency: a unique index allows one queued or
    running job per checksum, so of simultaneous enqueues of the same content one inserts
    and the others look again and find its job.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    for _ in range(ENQUEUE_ROUNDS):
        try:
            return _enqueue_once(engine, path=path, file_name=file_name, source=source,
                                 checksum=checksum, size=size, options=options, origin=origin,
                                 max_attempts=max_attempts)
        except IntegrityError:
            continue  # another enqueue of this content won the race: look again
    raise RuntimeError(f"enqueueing content {checksum[:16]}… lost {ENQUEUE_ROUNDS} races in a "
                       "row")


def _enqueue_once(engine: Engine, *, path: str, file_name: str, source: str, checksum: str,
                  size: int, options: dict[str, Any], origin: str,
                  max_attempts: int) -> Enqueued:
    at = _now()
    with session_scope(engine) as s:
        done = s.get(IngestedFile, checksum)
        if done is not None:
            job = Job(status="succeeded", source=source, path=path, file_name=file_name,
                      checksum=checksum, size_bytes=size, options=options, origin=origin,
                      duplicate_of=done.job_id, stage="already-ingested", created_at=at,
                      started_at=at, finished_at=at)
            s.add(job)
            s.flush()
            return Enqueued(job.id, "duplicate", done.job_id)
        waiting = _active_job(s, checksum)
        if waiting is not None:
            return Enqueued(waiting, "already-queued")
        job = Job(status="queued", source=source, path=path, file_name=file_name,
                  checksum=checksum, size_bytes=size, options=options, origin=origin,
                  attempts=0, max_attempts=max_attempts, created_at=at, stage="queued",
                  next_attempt_at=at)
        s.add(job)
        s.flush()  # IntegrityError: the same content is queued or running (the unique index)
        # The job that held the content may have published it between the look above and
        # the insert (it left the index as it succeeded): this one is then a duplicate.
        done = s.get(IngestedFile, checksum)
        if done is not None:
            job.status, job.stage, job.duplicate_of = "succeeded", "already-ingested", done.job_id
            job.started_at = job.finished_at = at
            job.next_attempt_at = None
            return Enqueued(job.id, "duplicate", done.job_id)
        return Enqueued(job.id, "queued")


def _active_job(s: Session, checksum: str) -> int | None:
    """The queued or running job of this content (at most one: the unique index)."""
    return s.scalar(select(Job.id).where(Job.checksum == checksum, Job.status.in_(ACTIVE))
                    .order_by(Job.id).limit(1))


def claim_next(engine: Engine, worker: str, *, lease_seconds: float,
               now: datetime | None = None) -> ClaimedJob | None:
    """Take the oldest due job (queued and due, or running with an expired lease), or None."""
    at = _now(now)
    due = or_(and_(Job.status == "queued",
                   or_(Job.next_attempt_at.is_(None), Job.next_attempt_at <= at)),
              and_(Job.status == "running", Job.lease_expires_at.is_not(None),
                   Job.lease_expires_at < at))
    row = claim.claim_next(
        engine, Job.id, due=due, order_by=[Job.id],
        values={"status": "running", "lease_owner": worker[:200],
                "lease_expires_at": at + timedelta(seconds=lease_seconds), "heartbeat_at": at,
                "attempts": Job.attempts + 1, "started_at": func.coalesce(Job.started_at, at),
                "stage": "claimed", "error": None, "error_code": None},
        returning=[Job.id, Job.path, Job.file_name, Job.source, Job.checksum, Job.options,
                   Job.attempts])
    if row is None:
        return None
    options = row.options if isinstance(row.options, dict) else _json(row.options)
    return ClaimedJob(id=row.id, path=row.path, file_name=row.file_name, source=row.source,
                      checksum=row.checksum, options=options, attempts=row.attempts,
                      resume=row.attempts > 1)


def _json(value: Any) -> dict[str, Any]:
    """A JSON column that came back as its text (or NULL): the dict it holds."""
    return dict(json.loads(value)) if value else {}


def renew_lease(engine: Engine, job_id: int, worker: str, *, lease_seconds: float,
                progress: dict[str, Any] | None = None, now: datetime | None = None) -> Lease:
    """Extend the lease (and publish progress, if given); tells whether it is still ours and
    whether someone asked the job to stop."""
    at = _now(now)
    values: dict[str, Any] = {"lease_expires_at": at + timedelta(seconds=lease_seconds),
                              "heartbeat_at": at}
    if progress is not None:
        values["progress"] = progress
        if "stage" in progress:
            values["stage"] = str(progress["stage"])[:32]
    with session_scope(engine) as s:
        result = s.execute(update(Job).where(Job.id == job_id, Job.lease_owner == worker,
                                             Job.status == "running").values(**values))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return Lease(held=False, cancel_requested=False)
        cancel = s.scalar(select(Job.cancel_requested).where(Job.id == job_id))
        return Lease(held=True, cancel_requested=bool(cancel))


def release(engine: Engine, job_id: int, worker: str, *, outcome: str, error: str | None = None,
            error_code: str | None = None, retryable: bool = False,
            progress: dict[str, Any] | None = None, now: datetime | None = None) -> str:
    """End the worker's hold on a job and return its new status.

    outcome "succeeded" keeps what the ingest wrote; "cancelled" ends it; "failed" either
    queues it again after a backoff (retryable and attempts left) or leaves it failed.
    Nothing happens, and "" is returned, if the worker no longer holds the job.
    """
    if outcome not in ("succeeded", "failed", "cancelled"):
        raise ValueError(f"unknown outcome {outcome!r}")
    at = _now(now)
    with session_scope(engine) as s:
        job = s.scalars(select(Job).where(Job.id == job_id, Job.lease_owner == worker)
                        .with_for_update()).first()
        if job is None:
            return ""
        job.lease_owner, job.lease_expires_at = None, None
        if progress is not None:  # the last report: a short job may end between heartbeats
            job.progress = progress
        if outcome == "failed" and retryable and job.attempts < job.max_attempts \
                and not job.cancel_requested:
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (job.attempts - 1))
            job.status, job.stage = "queued", "retry-wait"
            job.next_attempt_at = at + timedelta(seconds=delay)
            job.finished_at = None
        else:
            job.status = outcome
            job.finished_at = job.finished_at or at
        if error is not None:
            job.error, job.error_code = error, error_code
        if job.status == "failed":  # final: announced with the state change (the outbox)
            webhooks.emit(s, "job.failed", job_event(job))
        return job.status


def request_cancel(engine: Engine, job_id: int) -> str | None:
    """Cancel: a queued job ends now; a running one is asked to stop. The status after, or
    None for an unknown job. Finished jobs are left as they are."""
    at = _now()
    with session_scope(engine) as s:
        job = s.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
        if job is None:
            return None
        if job.status == "queued":
            job.status, job.stage, job.finished_at = "cancelled", "cancelled", at
            job.cancel_requested = True
        elif job.status == "running":
            job.cancel_requested = True
        return job.status


class RetryRefused(Exception):
    """A retry that could not run: `reason` is a stable code, the message says why."""

    def __init__(self, reason: str, message: str, job_id: int | None = None) -> None:
        super().__init__(message)
        self.reason, self.job_id = reason, job_id  # job_id: the other job concerned


def retry(engine: Engine, job_id: int) -> str | None:
    """Queue a failed or cancelled job again, with a fresh set of attempts. The status after,
    or None for an unknown job; other states are left as they are.

    RetryRefused when the retry could only fail or repeat work: the content was ingested
    since (by another job), another job with the same content is queued or running, or the
    job's file is gone (a landed file is deleted once its content is ingested).
    """
    at = _now()
    try:
        with session_scope(engine) as s:
            job = s.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
            if job is None:
                return None
            if job.status not in ("failed", "cancelled") or job.duplicate_of is not None:
                return job.status
            _check_retry(s, job)
            job.status, job.stage, job.next_attempt_at = "queued", "queued", at
            job.max_attempts = job.attempts + DEFAULT_ATTEMPTS
            job.cancel_requested = False
            job.finished_at = None
            s.flush()  # IntegrityError: the same content was queued meanwhile
            return job.status
    except IntegrityError:
        with session_scope(engine) as s:
            checksum = s.scalar(select(Job.checksum).where(Job.id == job_id))
            other = _active_job(s, checksum) if checksum else None
        raise _busy(job_id, other) from None


def _check_retry(s: Session, job: Job) -> None:
    if job.checksum:
        done = s.get(IngestedFile, job.checksum)
        if done is not None and done.job_id != job.id:
            raise RetryRefused("already-ingested", f"job {job.id} cannot be retried: its "
                               f"content was ingested by job {done.job_id} since", done.job_id)
        other = _active_job(s, job.checksum)
        if other is not None:
            raise _busy(job.id, other)
    if not os.path.isfile(job.path):
        raise RetryRefused("file-missing", f"job {job.id} cannot be retried: its file "
                           f"{job.file_name!r} is not there any more; send the file again")


def _busy(job_id: int, other: int | None) -> RetryRefused:
    return RetryRefused("already-queued", f"job {job_id} cannot be retried: job "
                        f"{other if other is not None else '(another)'} with the same "
                        "content is queued or running", other)
