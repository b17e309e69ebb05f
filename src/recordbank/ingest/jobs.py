"""Ingest jobs in the relational DB: creation, claiming a file's checksum, progress, outcome."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recordbank.db.models import IngestedFile, Job
from recordbank.db.session import session_scope
from recordbank.notify import webhooks

# A running job whose worker has not beaten for this long is considered dead and resumable.
STALE_AFTER = timedelta(seconds=60)
CLAIM_ROUNDS = 3
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Claim:
    """What registering a file found: a new job, a job to resume, or an already-ingested file."""

    job_id: int
    kind: str  # "new" | "resume" | "already-ingested" | "busy"
    previous_job: int | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _worker_alive(worker: str | None, heartbeat: datetime | None) -> bool:
    if not worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname():
        if worker == WORKER_ID:
            return False  # our own earlier attempt in this process: it is not running now
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            return True
        return True
    if heartbeat is None:
        return False
    if heartbeat.tzinfo is None:
        heartbeat = heartbeat.replace(tzinfo=UTC)
    return _now() - heartbeat < STALE_AFTER


def claim_file(engine: Engine, *, source: str, path: str, file_name: str, checksum: str,
               size: int, options: dict[str, Any]) -> Claim:
    """Register a file for ingestion, exactly once per checksum.

    A checksum already published is a no-op (reported with the job that did it); a job for the
    same checksum left unfinished by a dead worker is resumed; one still running is reported busy.
    One queued or running job per checksum is the database's rule (a unique index): a claim
    that loses a race to another process looks again.
    """
    for _ in range(CLAIM_ROUNDS - 1):
        try:
            return _claim_file(engine, source=source, path=path, file_name=file_name,
                               checksum=checksum, size=size, options=options)
        except IntegrityError:
            continue
    return _claim_file(engine, source=source, path=path, file_name=file_name,
                       checksum=checksum, size=size, options=options)


def _claim_file(engine: Engine, *, source: str, path: str, file_name: str, checksum: str,
                size: int, options: dict[str, Any]) -> Claim:
    with session_scope(engine) as s:
        done = s.get(IngestedFile, checksum)
        if done is not None:
            job = Job(status="succeeded", source=source, path=path, file_name=file_name,
                      checksum=checksum, size_bytes=size, options=options,
                      duplicate_of=done.job_id, stage="already-ingested",
                      created_at=_now(), started_at=_now(), finished_at=_now())
            s.add(job)
            s.flush()
            return Claim(job.id, "already-ingested", done.job_id)
        unfinished = ("queued", "running", "failed")
        q = (select(Job).where(Job.checksum == checksum, Job.status.in_(unfinished),
                               Job.duplicate_of.is_(None))  # the queued or running one first
             .order_by(case((Job.status == "failed", 1), else_=0), Job.id).with_for_update())
        open_job = s.scalars(q).first()
        if open_job is not None:
            worker = (open_job.options or {}).get("worker")
            if open_job.status == "running" and _worker_alive(worker, open_job.heartbeat_at):
                return Claim(open_job.id, "busy")
            open_job.status = "running"
            open_job.options = {**(open_job.options or {}), **options, "worker": WORKER_ID}
            open_job.path, open_job.file_name, open_job.source = path, file_name, source
            open_job.attempts += 1
            open_job.error = open_job.error_code = None
            open_job.heartbeat_at = _now()
            open_job.started_at = open_job.started_at or _now()
            return Claim(open_job.id, "resume")
        job = Job(status="running", source=source, path=path, file_name=file_name,
                  checksum=checksum, size_bytes=size, options={**options, "worker": WORKER_ID},
                  attempts=1, created_at=_now(), started_at=_now(), heartbeat_at=_now(),
                  stage="registered")
        s.add(job)
        s.flush()
        return Claim(job.id, "new")


def _apply(s: Session, job_id: int, fields: dict[str, Any]) -> Job:
    job = s.get(Job, job_id)
    if job is None:
        raise KeyError(job_id)
    for key, value in fields.items():
        setattr(job, key, value)
    job.heartbeat_at = _now()
    return job


def update_job(engine: Engine, job_id: int, **fields: Any) -> None:
    with session_scope(engine) as s:
        _apply(s, job_id, fields)


def finish_job(engine: Engine, job_id: int, *, register: bool, **fields: Any) -> None:
    """Mark success and record the checksum in the file registry in one transaction."""
    with session_scope(engine) as s:
        job = _apply(s, job_id, fields)
        job.status, job.stage, job.finished_at = "succeeded", "done", _now()
        job.error = job.error_code = None
        if register and job.checksum and s.get(IngestedFile, job.checksum) is None:
            s.add(IngestedFile(checksum=job.checksum, size_bytes=job.size_bytes or 0,
                               name=job.file_name, job_id=job.id, first_seen=_now()))
        webhooks.emit(s, "job.completed", job_event(job))


def fail_job(engine: Engine, job_id: int, error: str, code: str, **fields: Any) -> None:
    """Mark a failed attempt. A queued job's final failure is announced by the queue, which
    alone knows whether the job will be retried; a direct ingest's failure is final here."""
    with session_scope(engine) as s:
        job = _apply(s, job_id, {"status": "failed", "error": error, "error_code": code,
                                 "finished_at": _now(), **fields})
        if job.origin is None:
            webhooks.emit(s, "job.failed", job_event(job))


def job_event(job: Job) -> dict[str, Any]:
    """What a job.completed / job.failed webhook says about the job."""
    return {"job_id": job.id, "status": job.status, "source": job.source,
            "file_name": job.file_name, "origin": job.origin, "rows_read": job.rows_read,
            "rows_inserted": job.rows_inserted, "rows_duplicate": job.rows_duplicate,
            "rows_quarantined": job.rows_quarantined, "error": job.error,
            "error_code": job.error_code}


def get_job(engine: Engine, job_id: int) -> Job | None:
    with session_scope(engine) as s:
        return s.get(Job, job_id)


def list_jobs(engine: Engine, limit: int = 50, status: str | None = None) -> list[Job]:
    with session_scope(engine) as s:
        q = select(Job).order_by(Job.id.desc()).limit(limit)
        if status:
            q = q.where(Job.status == status)
        return list(s.scalars(q))
