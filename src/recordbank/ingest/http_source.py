"""Running a scheduled HTTP JSON source: every page -> one JSONL file -> one queued job.

A run fetches the source's pages (ingest/http_fetch.py), takes the records at `records_path`
of each page, and streams them into one JSONL file in the landing folder (only the page being
read is in memory). The file is queued like an upload (origin "http");
the pipeline's dedup then stores only records whose hash is new, so re-fetching overlapping
pages costs nothing in the table, and a run that returns exactly the content of an earlier one
is recognised by its checksum and not ingested again.

Every error text is cleaned of the source's secret before it is stored or logged.

Runs are claimed in one statement (db/claim.py, as ingest/queue.py claims jobs), which sets a
lease on the source and pushes its next_run_at forward, so any number of schedulers in any
processes run a due source once. The lease is renewed while pages arrive; a run that died frees
the source when its lease ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, and_, or_, select, update

from recordbank.db import claim as db_claim
from recordbank.db.session import session_scope
from recordbank.ingest import queue
from recordbank.ingest.http_fetch import Fetch, FetchError, Stopped, redact
from recordbank.ingest.http_sources_model import (
    HttpSource,
    NotFound,
    Source,
    aware,
    get,
    to_source,
)
from recordbank.ingest.landed_files import enqueue_copy
from recordbank.ingest.landing import INCOMING, place

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
LEASE_SECONDS = 900.0  # a run holds its source this long after its latest page
RENEW_SECONDS = 30.0
BACKOFF_BASE_SECONDS = 30.0


class Busy(Exception):
    """The source is being run right now (by the scheduler or another "run now")."""


@dataclass
class Outcome:
    source: str
    status: str  # ok | empty | failed
    records: int = 0
    pages: int = 0
    job_id: int | None = None
    job_kind: str | None = None  # queued | already-queued | duplicate (content seen before)
    error: str | None = None  # failed: why; ok: a warning (stopped at max_pages)
    next_run_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> datetime:
    return datetime.now(UTC)


# --- the JSONL file ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Landed:
    path: Path
    checksum: str
    size: int
    created: bool


def _land(records: Iterator[dict[str, Any]], landing: Path, name: str) -> tuple[_Landed | None,
                                                                                   int]:
    """Stream the records into <landing>/<sha256>/<name>.jsonl; (None, 0) when there are none.
    Nothing but a complete file reaches the landing folder."""
    folder = landing / INCOMING / uuid.uuid4().hex
    folder.mkdir(parents=True)
    temp = folder / f"{name}.jsonl"
    digest, size, count = hashlib.sha256(), 0, 0
    try:
        with temp.open("wb") as fh:
            for record in records:
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
                line += b"\n"
                digest.update(line)
                fh.write(line)
                size += len(line)
                count += 1
        if count == 0:
            return None, 0
        checksum = digest.hexdigest()
        final = landing / checksum / temp.name
        created = place(temp, final)  # False: there already, a job may be reading it
        return _Landed(final, checksum, size, created), count
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _queue(engine: Engine, landed: _Landed, source: Source) -> queue.Enqueued:
    options: dict[str, Any] = {"format": "jsonl"}
    if source.mapping_file:
        options["mapping_file"] = source.mapping_file
    made = enqueue_copy(engine, landed, source=source.name, options=options, origin="http")
    return made


# --- claiming and recording -----------------------------------------------------------------

def claim_due(engine: Engine, *, now: datetime | None = None) -> tuple[Source, datetime] | None:
    """Take the source that is due longest (enabled, next_run_at passed, no live run) and
    push its next_run_at to the lease end, in one statement; None when none is due."""
    at = now or _now()
    until = at + timedelta(seconds=LEASE_SECONDS)
    due = and_(HttpSource.enabled.is_(True), HttpSource.next_run_at <= at,
               or_(HttpSource.lease_until.is_(None), HttpSource.lease_until < at))
    row = db_claim.claim_next(engine, HttpSource.id, due=due,
                              order_by=[HttpSource.next_run_at, HttpSource.id],
                              values={"next_run_at": until, "lease_until": until},
                              returning=[HttpSource.id])
    source = _load(engine, int(row[0])) if row is not None else None
    return (source, until) if source is not None else None


def claim(engine: Engine, key: int | str) -> tuple[Source, datetime]:
    """Take one source for a run now, whatever its schedule (disabled ones too); Busy when a
    run holds it. NotFound (from the model) for an unknown id or name."""
    source_id = int(get(engine, key)["id"])
    at = _now()
    until = at + timedelta(seconds=LEASE_SECONDS)
    stmt = (update(HttpSource)
            .where(HttpSource.id == source_id,
                   or_(HttpSource.lease_until.is_(None), HttpSource.lease_until < at))
            .values(next_run_at=until, lease_until=until).returning(HttpSource.id))
    with engine.begin() as conn:
        if conn.execute(stmt).scalar() is None:
            raise Busy(f"source {key!r} is running right now")
    source = _load(engine, source_id)
    if source is None:
        raise NotFound(f"no HTTP source {key!r}")
    return source, until


def _load(engine: Engine, source_id: int) -> Source | None:
    """The claimed source with its secret (None: removed since the claim)."""
    with session_scope(engine) as s:
        row = s.get(HttpSource, source_id)
        return to_source(row) if row is not None else None


def _renew(engine: Engine, source_id: int, held: datetime) -> datetime:
    until = _now() + timedelta(seconds=LEASE_SECONDS)
    with engine.begin() as conn:
        conn.execute(update(HttpSource).where(HttpSource.id == source_id,
                                              HttpSource.lease_until == held)
                     .values(lease_until=until, next_run_at=until))
    return until


def _record(engine: Engine, source: Source, held: datetime, outcome: Outcome) -> None:
    """The outcome and the next run: interval after a good run; after a failure 30 s, 60 s,
    120 s … (never later than the interval). Nothing is written by a run that lost its lease."""
    at = _now()
    with session_scope(engine) as s:
        row = s.scalars(select(HttpSource).where(HttpSource.id == source.id)
                        .with_for_update()).first()
        if row is None or aware(row.lease_until) != held:
            log.warning("HTTP source %s: the run's outcome is not recorded (source removed or "
                        "its lease ran out)", source.name)
            return
        if outcome.status == "failed":
            row.failures += 1
            delay = min(float(row.interval_seconds),
                        BACKOFF_BASE_SECONDS * 2 ** min(row.failures - 1, 20))
        else:
            row.failures, delay = 0, float(row.interval_seconds)
        row.next_run_at = at + timedelta(seconds=delay)
        row.lease_until, row.last_run_at, row.last_status = None, at, outcome.status
        row.last_error, row.last_records, row.last_job_id = (outcome.error, outcome.records,
                                                             outcome.job_id)
        outcome.next_run_at = row.next_run_at.isoformat()


def _release(engine: Engine, source: Source, held: datetime) -> None:
    """A run cut short by shutdown leaves no outcome: the source is due again at once."""
    with engine.begin() as conn:
        conn.execute(update(HttpSource).where(HttpSource.id == source.id,
                                              HttpSource.lease_until == held)
                     .values(lease_until=None, next_run_at=_now()))


# --- a run ------------------------------------------------------------------------------------

@dataclass
class _Lease:
    held: datetime  # lease_until as written: the run's token
    renewed: float


def run_claimed(engine: Engine, landing: Path, source: Source, held: datetime, *,
                stop: threading.Event | None = None) -> Outcome | None:
    """Fetch, land and queue one claimed source, and record the outcome (None: stopped)."""
    lease = _Lease(held, time.monotonic())

    def renew() -> None:
        if time.monotonic() - lease.renewed >= RENEW_SECONDS:
            lease.held, lease.renewed = _renew(engine, source.id, lease.held), time.monotonic()

    outcome = Outcome(source.name, "failed")
    fetch: Fetch | None = None
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            fetch = Fetch(client, source, on_page=renew, stop=stop)
            landed, outcome.records = _land(fetch.records(), landing, source.name)
        if landed is None:
            outcome.status = "empty"
        else:
            made = _queue(engine, landed, source)
            outcome.status, outcome.job_id, outcome.job_kind = "ok", made.job_id, made.kind
            if fetch.truncated:
                outcome.error = (f"stopped after max_pages ({fetch.pages}) pages; more may "
                                 "remain")
    except Stopped:
        _release(engine, source, lease.held)
        return None
    except FetchError as exc:
        outcome.error = redact(str(exc), source.secret)
    except httpx.HTTPError as exc:
        outcome.error = redact(f"{type(exc).__name__}: {exc}", source.secret)
    except Exception as exc:  # noqa: BLE001 - any failure is the run's outcome, lease freed
        log.exception("HTTP source %s: the run failed unexpectedly", source.name)
        outcome.error = redact(f"internal: {type(exc).__name__}: {exc}", source.secret)
    outcome.pages = fetch.pages if fetch is not None else 0
    if outcome.status == "failed":
        outcome.records = 0
    _record(engine, source, lease.held, outcome)
    log.info("HTTP source %s: %s, %d record(s) in %d page(s), job %s%s", source.name,
             outcome.status, outcome.records, outcome.pages, outcome.job_id,
             f": {outcome.error}" if outcome.error else "")
    return outcome


def run_now(engine: Engine, landing: Path, key: int | str) -> Outcome:
    """`recordbank sources run` and POST /v1/admin/sources/{id}/run. Busy, NotFound."""
    source, held = claim(engine, key)
    outcome = run_claimed(engine, landing, source, held)
    assert outcome is not None  # no stop event: never stopped
    return outcome


class SourceScheduler:
    """Runs due sources in a thread of its own (what `recordbank serve` starts)."""

    def __init__(self, engine: Engine, landing: Path, *, poll_seconds: float = 5.0) -> None:
        self.engine, self.landing, self.poll_seconds = engine, landing, poll_seconds
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="http-sources")

    def start(self) -> SourceScheduler:
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self._thread.join(timeout)

    def run_due(self, limit: int = 100) -> list[Outcome]:
        """Run every source due now (at most `limit`), one after the other."""
        done: list[Outcome] = []
        while len(done) < limit and not self.stop.is_set():
            claimed = claim_due(self.engine)
            if claimed is None:
                break
            outcome = run_claimed(self.engine, self.landing, *claimed, stop=self.stop)
            if outcome is not None:
                done.append(outcome)
        return done

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - the DB may be back at the next look
                log.exception("running the due HTTP sources failed")
            self.stop.wait(self.poll_seconds)
