"""Deleting landed copies once their content is ingested, so the landing folder does not grow
by every file ever uploaded.

Whose file: uploads, HTTP source runs and bucket objects land as our own copies in
`<landing>/<sha256>/<name>` (LANDED_ORIGINS); those go once a job of that content succeeded
(ingested, or answered as a duplicate of content ingested before). The watched folder's files
(origin "folder") and what `recordbank ingest` reads (no origin) belong to the user and are
never deleted. A job that failed or was cancelled keeps its file: a retry reads it.

Nothing that a finished job shows depends on the file: the job's row keeps its name, checksum,
counts and mapping report, and its rejected rows are in the store's quarantine table
(GET /v1/ingest/jobs/{id}/rejects.csv). A failed job of the same content whose file went with
this cleanup cannot be retried (ingest/queue.retry says why): its content is ingested already.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy import Engine, select

from recordbank.config import Settings
from recordbank.db.models import IngestedFile, Job
from recordbank.db.session import session_scope
from recordbank.ingest import job_view, queue
from recordbank.ingest.landing import discard, remove_landed
from recordbank.ingest.queue import ACTIVE

log = logging.getLogger(__name__)

LANDED_ORIGINS: Final = frozenset({"upload", "http", "bucket"})


class LandedCopy(Protocol):
    @property
    def path(self) -> Path: ...  # <landing>/<sha256>/<name>
    @property
    def checksum(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def created(self) -> bool: ...  # False: these bytes under this name were there already


def enqueue_copy(engine: Engine, landed: LandedCopy, *, source: str, options: dict[str, Any],
                 origin: str) -> queue.Enqueued:
    """Queue a copy that just landed (upload, HTTP source run, bucket object). A copy this
    call made is removed again when it is not needed: its content is ingested already, or a
    job reads it from another copy; also when queueing fails."""
    try:
        made = queue.enqueue(engine, path=str(landed.path), file_name=landed.path.name,
                             source=source, checksum=landed.checksum, size=landed.size,
                             options=options, origin=origin)
    except BaseException:
        if landed.created:
            discard(landed.path)
        raise
    if landed.created and (made.kind == "duplicate" or (
            made.kind == "already-queued"
            and job_view.path_of(engine, made.job_id) != str(landed.path))):
        discard(landed.path)
    return made


def drop_ingested(engine: Engine, settings: Settings, job_id: int) -> int:
    """After job `job_id` succeeded: delete the landed copies of its content (its own, and
    those that failed or cancelled jobs left, e.g. a failed upload of bytes a watched folder
    has just ingested), unless the settings keep them, the content is not ingested, a job of
    it is queued or running, or the job read a user's file inside that very folder (a
    watched folder set to the landing folder). The number of files deleted."""
    if settings.keep_landed_files:
        return 0
    landing = settings.resolved_landing_dir()
    with session_scope(engine) as s:
        job = s.get(Job, job_id)
        if job is None or job.status != "succeeded" or not job.checksum \
                or s.get(IngestedFile, job.checksum) is None:
            return 0
        checksum = job.checksum
        folder = landing / checksum
        if job.origin not in LANDED_ORIGINS and _inside(Path(job.path), folder):
            return 0
        active = s.scalar(select(Job.id).where(Job.checksum == checksum,
                                               Job.status.in_(ACTIVE)).limit(1))
        if active is not None:
            return 0
    removed = remove_landed(folder / "-", landing, checksum)
    if removed:
        log.info("job %s: deleted %d landed file(s) of content %s…", job_id, removed,
                 checksum[:12])
    return removed


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().parent == folder.resolve()
    except (OSError, RuntimeError):
        return True  # cannot tell: leave it


def drop_quietly(engine: Engine, settings: Settings, job_id: int) -> int:
    """drop_ingested for callers whose own work is done (a worker, an upload): a file that
    cannot be deleted now is logged, never their failure."""
    try:
        return drop_ingested(engine, settings, job_id)
    except Exception as exc:  # noqa: BLE001 - the job's outcome stands whatever happens here
        log.warning("job %s: deleting its landed file failed: %s", job_id, exc)
        return 0
