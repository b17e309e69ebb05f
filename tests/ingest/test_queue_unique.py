"""One queued-or-running job per content, held by the database (a partial unique index), on
SQLite and PostgreSQL: simultaneous enqueues of the same checksum queue one job; every way a
job becomes queued or running again (retry, lease expiry, the CLI's claim) keeps the rule and
answers clearly when it cannot; migration 0008 ends the extra jobs an old database holds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from recordbank.config import Settings
from recordbank.db.models import IngestedFile, Job
from recordbank.db.session import session_scope
from recordbank.ingest import jobs, queue

SUM = "ab" * 32
THREADS = 16


def enqueue(engine: Engine, path: Path | str, checksum: str = SUM) -> queue.Enqueued:
    return queue.enqueue(engine, path=str(path), file_name=Path(path).name, source="t",
                         checksum=checksum, size=4, options={}, origin="upload")


def active(engine: Engine, checksum: str = SUM) -> list[int]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Job.id).where(Job.checksum == checksum,
                                                   Job.status.in_(queue.ACTIVE))))


def status(engine: Engine, job_id: int) -> str:
    with session_scope(engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found.status


def a_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("n\n1\n")
    return path


def test_simultaneous_enqueues_of_one_content_queue_one_job(engine: Engine,
                                                            tmp_path: Path) -> None:
    start = threading.Barrier(THREADS)
    answers: list[queue.Enqueued] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def upload(i: int) -> None:
        start.wait()
        try:
            got = enqueue(engine, tmp_path / f"copy{i}.csv")
        except BaseException as exc:  # noqa: BLE001 - collected, asserted below
            with lock:
                errors.append(exc)
            return
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [queued] = [a for a in answers if a.kind == "queued"]
    others = [a for a in answers if a is not queued]
    assert len(others) == THREADS - 1
    assert all(a == queue.Enqueued(queued.job_id, "already-queued") for a in others)
    assert active(engine) == [queued.job_id]
    with session_scope(engine) as s:  # no other row was left behind by the losers
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_the_database_refuses_a_second_active_job(engine: Engine) -> None:
    first = enqueue(engine, "/l/a.csv")
    at = datetime.now(UTC)
    for state in ("queued", "running"):
        with pytest.raises(IntegrityError), session_scope(engine) as s:
            s.add(Job(status=state, source="t", path="/l/b.csv", file_name="b.csv",
                      checksum=SUM, created_at=at))
    with session_scope(engine) as s:  # finished jobs of the content: any number
        for state in ("succeeded", "failed", "cancelled", "failed"):
            s.add(Job(status=state, source="t", path="/l/c.csv", file_name="c.csv",
                      checksum=SUM, created_at=at))
        # jobs without a checksum are not held by the rule
        s.add(Job(status="queued", source="t", path="/x", file_name="x", created_at=at))
        s.add(Job(status="queued", source="t", path="/y", file_name="y", created_at=at))
    assert active(engine) == [first.job_id]


def test_retry_answers_clearly_when_the_content_is_queued_ingested_or_gone(
        engine: Engine, tmp_path: Path) -> None:
    path = a_file(tmp_path, "a.csv")
    old = enqueue(engine, path).job_id
    assert queue.claim_next(engine, "w", lease_seconds=30) is not None
    assert queue.release(engine, old, "w", outcome="failed", error="boom",
                         error_code="format:bad", retryable=False) == "failed"
    newer = enqueue(engine, path)  # the same content again: a new job, the old one failed
    assert newer.kind == "queued" and newer.job_id != old

    with pytest.raises(queue.RetryRefused) as refused:
        queue.retry(engine, old)
    assert (refused.value.reason, refused.value.job_id) == ("already-queued", newer.job_id)
    assert f"job {newer.job_id}" in str(refused.value)
    assert status(engine, old) == "failed" and active(engine) == [newer.job_id]

    assert queue.request_cancel(engine, newer.job_id) == "cancelled"
    assert queue.retry(engine, old) == "queued"  # nothing else holds the content now
    with pytest.raises(queue.RetryRefused) as refused:  # and now the other way round
        queue.retry(engine, newer.job_id)
    assert (refused.value.reason, refused.value.job_id) == ("already-queued", old)

    claimed = queue.claim_next(engine, "w", lease_seconds=30)
    assert claimed is not None and claimed.id == old
    with session_scope(engine) as s:  # what a worker's success registers
        s.add(IngestedFile(checksum=SUM, size_bytes=4, name="a.csv", job_id=old,
                           first_seen=datetime.now(UTC)))
    assert queue.release(engine, old, "w", outcome="succeeded") == "succeeded"
    with pytest.raises(queue.RetryRefused) as refused:
        queue.retry(engine, newer.job_id)
    assert (refused.value.reason, refused.value.job_id) == ("already-ingested", old)
    assert queue.retry(engine, old) == "succeeded"  # left as it is (the API answers 409)

    gone = enqueue(engine, tmp_path / "never-there.csv", checksum="cd" * 32).job_id
    assert queue.request_cancel(engine, gone) == "cancelled"
    with pytest.raises(queue.RetryRefused) as refused:
        queue.retry(engine, gone)
    assert refused.value.reason == "file-missing" and "send the file again" in str(refused.value)
    assert status(engine, gone) == "cancelled"


def test_lease_expiry_and_backoff_keep_the_one_job(engine: Engine, tmp_path: Path) -> None:
    jid = enqueue(engine, a_file(tmp_path, "a.csv")).job_id
    now = datetime.now(UTC)
    assert queue.claim_next(engine, "dead", lease_seconds=5, now=now) is not None
    assert enqueue(engine, tmp_path / "b.csv") == queue.Enqueued(jid, "already-queued")
    later = now + timedelta(seconds=10)  # the first worker died: its job is resumed
    again = queue.claim_next(engine, "w2", lease_seconds=5, now=later)
    assert again is not None and again.id == jid and again.resume
    assert queue.release(engine, jid, "w2", outcome="failed", error="x",
                         error_code="ingest:internal", retryable=True, now=later) == "queued"
    assert enqueue(engine, tmp_path / "c.csv") == queue.Enqueued(jid, "already-queued")
    assert active(engine) == [jid]


def test_the_cli_claim_takes_the_active_job_not_an_older_failed_one(engine: Engine,
                                                                    tmp_path: Path) -> None:
    path = a_file(tmp_path, "a.csv")
    old = enqueue(engine, path).job_id
    assert queue.claim_next(engine, "w", lease_seconds=30) is not None
    queue.release(engine, old, "w", outcome="failed", error="boom", error_code="format:x")
    waiting = enqueue(engine, path).job_id
    claim = jobs.claim_file(engine, source="t", path=str(path), file_name="a.csv",
                            checksum=SUM, size=4, options={})
    assert (claim.job_id, claim.kind) == (waiting, "resume")
    assert status(engine, old) == "failed" and active(engine) == [waiting]


def test_simultaneous_cli_claims_never_break_the_rule(engine: Engine, tmp_path: Path) -> None:
    path = a_file(tmp_path, "a.csv")
    start = threading.Barrier(8)
    claims: list[jobs.Claim] = []
    errors: list[BaseException] = []

    def claim() -> None:
        start.wait()
        try:
            claims.append(jobs.claim_file(engine, source="t", path=str(path),
                                          file_name="a.csv", checksum=SUM, size=4,
                                          options={}))
        except BaseException as exc:  # noqa: BLE001 - collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(claims) == 8
    [one] = active(engine)
    assert {c.job_id for c in claims} == {one}
    assert [c.kind for c in claims].count("new") == 1


def test_migration_0008_ends_the_extra_active_jobs_of_an_old_database(
        database_url: str) -> None:
    url = Settings(database_url=database_url).resolved_database_url()
    raw = sqlalchemy.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", "recordbank.db:migrations")
    try:
        with raw.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
        at = datetime(2030, 1, 1, tzinfo=UTC)
        rows = [("queued", SUM), ("running", SUM), ("queued", SUM), ("failed", SUM),
                ("queued", "cd" * 32), ("queued", None), ("queued", None)]
        with raw.begin() as conn:
            for state, checksum in rows:
                conn.execute(sqlalchemy.text(
                    "INSERT INTO ingest_jobs (status, source, path, file_name, checksum, "
                    "options, rows_read, rows_inserted, rows_duplicate, rows_quarantined, "
                    "attempts, created_at) VALUES (:s, 't', '/p', 'p', :c, '{}', 0, 0, 0, 0, "
                    "0, :at)"), {"s": state, "c": checksum, "at": at})
        with raw.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0008")
        with raw.connect() as conn:
            after = conn.execute(sqlalchemy.text(
                "SELECT id, status, error_code FROM ingest_jobs ORDER BY id")).all()
        assert [(r.status, r.error_code) for r in after] == [
            ("queued", None), ("cancelled", "superseded"), ("cancelled", "superseded"),
            ("failed", None), ("queued", None), ("queued", None), ("queued", None)]
        with pytest.raises(IntegrityError), raw.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE ingest_jobs SET status = 'queued' "
                                         "WHERE id = :id"), {"id": after[3].id})
        with raw.begin() as conn:  # and back down: the index goes, nothing else
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        with raw.begin() as conn:
            conn.execute(sqlalchemy.text("UPDATE ingest_jobs SET status = 'queued' "
                                         "WHERE id = :id"), {"id": after[3].id})
    finally:
        raw.dispose()
