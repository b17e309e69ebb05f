"""Ingest jobs as the API shows them: filtered pages, one job in full, and the snapshot that
the live event stream polls. JSON-ready dicts; times are UTC ISO 8601."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.usage.report import as_utc

FINAL = ("succeeded", "failed", "cancelled")
# Options the CLI keeps for itself: not part of what a caller asked for.
_PRIVATE_OPTIONS = ("worker",)


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    source: str | None = None
    origin: str | None = None
    since: datetime | None = None  # created_at, inclusive
    until: datetime | None = None  # created_at, exclusive

    def conditions(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = []
        if self.status is not None:
            conds.append(Job.status == self.status)
        if self.source is not None:
            conds.append(Job.source == self.source)
        if self.origin is not None:
            conds.append(Job.origin == self.origin)
        if self.since is not None:
            conds.append(Job.created_at >= as_utc(self.since))
        if self.until is not None:
            conds.append(Job.created_at < as_utc(self.until))
        return conds


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def rows_per_second(job: Job) -> float | None:
    """The live rate while it runs; after, rows read over the run's total time."""
    if job.status == "running" and job.progress and "rows_per_s" in job.progress:
        return float(job.progress["rows_per_s"])
    total = (job.timings or {}).get("total")
    if job.status == "succeeded" and job.duplicate_of is None and total:
        return round(job.rows_read / float(total), 1)
    return None


def counts(job: Job) -> dict[str, int]:
    return {"read": job.rows_read or 0, "inserted": job.rows_inserted or 0,
            "duplicate": job.rows_duplicate or 0, "quarantined": job.rows_quarantined or 0}


def public(job: Job, *, detail: bool = False) -> dict[str, Any]:
    """What a caller sees of a job; `detail` adds the mapping report and reader notes."""
    out: dict[str, Any] = {
        "id": job.id, "status": job.status, "stage": job.stage, "origin": job.origin,
        "source": job.source, "file_name": job.file_name, "checksum": job.checksum,
        "size_bytes": job.size_bytes, "format": job.format,
        "options": {k: v for k, v in (job.options or {}).items()
                    if k not in _PRIVATE_OPTIONS},
        "counts": counts(job), "progress": job.progress, "rows_per_s": rows_per_second(job),
        "timings": job.timings, "attempts": job.attempts, "max_attempts": job.max_attempts,
        "cancel_requested": bool(job.cancel_requested), "duplicate_of": job.duplicate_of,
        "error": {"code": job.error_code, "message": job.error} if job.error else None,
        "created_at": _iso(job.created_at), "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at), "next_attempt_at": _iso(job.next_attempt_at)
        if job.status == "queued" else None,
        "heartbeat_at": _iso(job.heartbeat_at),
    }
    if detail:
        out["mapping_report"] = job.mapping_report
        out["reader_notes"] = job.reader_notes
    return out


def page(engine: Engine, f: JobFilter, *, limit: int,
         offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of jobs, newest first, and how many match in all."""
    conds = f.conditions()
    with session_scope(engine) as s:
        total = int(s.scalar(select(func.count()).select_from(Job).where(*conds)) or 0)
        jobs = s.scalars(select(Job).where(*conds).order_by(Job.id.desc())
                         .limit(limit).offset(offset)).all()
        return [public(j) for j in jobs], total


def get(engine: Engine, job_id: int, *, detail: bool = True) -> dict[str, Any] | None:
    with session_scope(engine) as s:
        job = s.get(Job, job_id)
        return public(job, detail=detail) if job is not None else None


def live(engine: Engine, job_id: int) -> dict[str, Any] | None:
    """What the event stream polls several times a second: only the columns that change while
    a job runs (not the mapping report and the other large JSON columns of `get`)."""
    cols = (Job.id, Job.status, Job.stage, Job.attempts, Job.progress, Job.rows_read,
            Job.rows_inserted, Job.rows_duplicate, Job.rows_quarantined)
    with engine.connect() as conn:
        row = conn.execute(select(*cols).where(Job.id == job_id)).first()
    if row is None:
        return None
    return {"id": row.id, "status": row.status, "stage": row.stage, "attempts": row.attempts,
            "progress": row.progress,
            "counts": {"read": row.rows_read or 0, "inserted": row.rows_inserted or 0,
                       "duplicate": row.rows_duplicate or 0,
                       "quarantined": row.rows_quarantined or 0}}


def path_of(engine: Engine, job_id: int) -> str | None:
    with session_scope(engine) as s:
        return s.scalar(select(Job.path).where(Job.id == job_id))
