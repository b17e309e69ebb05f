"""The ingest queue on SQLite and PostgreSQL: once per checksum, claims that never collide,
leases that expire into a resume, backoff then dead letter, cancel and retry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from recordbank.db.models import IngestedFile, Job
from recordbank.db.session import session_scope
from recordbank.ingest import queue

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def add(engine: Engine, n: int, path: Path | None = None) -> queue.Enqueued:
    return queue.enqueue(engine, path=str(path or f"/landing/f{n}.csv"), file_name=f"f{n}.csv",
                         source="test", checksum=f"{n:064x}", size=10, options={"n": n},
                         origin="upload", max_attempts=3)


def job(engine: Engine, job_id: int) -> Job:
    with session_scope(engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def test_one_job_per_content(engine: Engine) -> None:
    first = add(engine, 1)
    assert first.kind == "queued" and job(engine, first.job_id).status == "queued"
    assert add(engine, 1) == queue.Enqueued(first.job_id, "already-queued")
    with session_scope(engine) as s:
        s.add(IngestedFile(checksum=f"{2:064x}", size_bytes=10, name="f2.csv",
                           job_id=first.job_id, first_seen=T0))
    dup = add(engine, 2)
    assert dup.kind == "duplicate" and dup.previous_job == first.job_id
    assert job(engine, dup.job_id).status == "succeeded"  # answered, never queued
    with pytest.raises(ValueError):
        queue.enqueue(engine, path="x", file_name="x", source="s", checksum="c", size=1,
                      options={}, origin="upload", max_attempts=0)


def test_claims_take_the_oldest_due_job_once(engine: Engine) -> None:
    ids = [add(engine, n).job_id for n in range(3)]
    now = datetime.now(UTC)
    a = queue.claim_next(engine, "w1", lease_seconds=30, now=now)
    b = queue.claim_next(engine, "w2", lease_seconds=30, now=now)
    assert a is not None and b is not None
    assert [a.id, b.id] == ids[:2] and a.options == {"n": 0}
    assert (a.attempts, a.resume, a.path) == (1, False, "/landing/f0.csv")
    c = queue.claim_next(engine, "w3", lease_seconds=30, now=now)
    assert c is not None and c.id == ids[2]
    assert queue.claim_next(engine, "w4", lease_seconds=30, now=now) is None
    assert job(engine, a.id).lease_owner == "w1" and job(engine, a.id).status == "running"


def test_an_expired_lease_is_resumed_by_another_worker(engine: Engine) -> None:
    jid = add(engine, 1).job_id
    now = datetime.now(UTC)
    first = queue.claim_next(engine, "dead", lease_seconds=10, now=now)
    assert first is not None and first.id == jid
    assert queue.claim_next(engine, "w2", lease_seconds=10, now=now + timedelta(seconds=5)) \
        is None  # the lease still runs
    again = queue.claim_next(engine, "w2", lease_seconds=10, now=now + timedelta(seconds=11))
    assert again is not None and again.id == jid and (again.attempts, again.resume) == (2, True)
    # the first worker, back from the dead, holds nothing and can change nothing
    assert queue.renew_lease(engine, jid, "dead", lease_seconds=10) == queue.Lease(False, False)
    assert queue.release(engine, jid, "dead", outcome="succeeded") == ""
    assert job(engine, jid).lease_owner == "w2" and job(engine, jid).status == "running"
    lease = queue.renew_lease(engine, jid, "w2", lease_seconds=10,
                              progress={"stage": "read", "rows": 5})
    assert lease == queue.Lease(True, False)
    assert job(engine, jid).progress == {"stage": "read", "rows": 5}
    assert queue.release(engine, jid, "w2", outcome="succeeded") == "succeeded"


def test_failures_back_off_then_stay_failed(engine: Engine, tmp_path: Path) -> None:
    landed = tmp_path / "f1.csv"  # a retry needs the file
    landed.write_text("n\n1\n")
    jid = add(engine, 1, path=landed).job_id
    now = datetime.now(UTC)
    delays = []
    for attempt in (1, 2, 3):
        claimed = queue.claim_next(engine, "w", lease_seconds=30, now=now)
        assert claimed is not None and claimed.attempts == attempt
        status = queue.release(engine, jid, "w", outcome="failed", error=f"boom {attempt}",
                               error_code="ingest:internal", retryable=True, now=now)
        found = job(engine, jid)
        if attempt < 3:
            assert status == "queued" and found.next_attempt_at is not None
            due = found.next_attempt_at.replace(tzinfo=UTC) if \
                found.next_attempt_at.tzinfo is None else found.next_attempt_at
            delays.append((due - now).total_seconds())
            assert queue.claim_next(engine, "w", lease_seconds=30, now=now) is None  # not yet
            now = due
        else:
            assert status == "failed" and found.error == "boom 3"  # the dead letter keeps why
    assert delays == [queue.BACKOFF_BASE_SECONDS, 2 * queue.BACKOFF_BASE_SECONDS]
    assert queue.claim_next(engine, "w", lease_seconds=30, now=now + timedelta(days=1)) is None
    assert queue.retry(engine, jid) == "queued"
    again = queue.claim_next(engine, "w", lease_seconds=30, now=now + timedelta(days=1))
    assert again is not None and again.id == jid


def test_a_permanent_failure_is_not_retried(engine: Engine) -> None:
    jid = add(engine, 1).job_id
    assert queue.claim_next(engine, "w", lease_seconds=30) is not None
    assert queue.release(engine, jid, "w", outcome="failed", error="not a table",
                         error_code="ingest:unsupported-format", retryable=False) == "failed"
    assert job(engine, jid).next_attempt_at is not None  # untouched: it never comes due again
    assert queue.claim_next(engine, "w", lease_seconds=30,
                            now=datetime.now(UTC) + timedelta(days=1)) is None
    with pytest.raises(ValueError):
        queue.release(engine, jid, "w", outcome="exploded")


def test_cancel_queued_and_running(engine: Engine) -> None:
    waiting, running = add(engine, 1).job_id, add(engine, 2).job_id
    assert queue.claim_next(engine, "w", lease_seconds=30) is not None  # takes job 1
    assert queue.request_cancel(engine, waiting) == "running"  # job 1 is the running one
    assert queue.renew_lease(engine, waiting, "w", lease_seconds=30).cancel_requested
    assert queue.request_cancel(engine, running) == "cancelled"
    assert queue.claim_next(engine, "w2", lease_seconds=30) is None
    assert queue.release(engine, waiting, "w", outcome="failed", retryable=True) == "failed"
    assert queue.request_cancel(engine, 10**9) is None and queue.retry(engine, 10**9) is None


def test_parallel_workers_claim_every_job_exactly_once(engine: Engine) -> None:
    ids = {add(engine, n).job_id for n in range(20)}
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (got := queue.claim_next(engine, name, lease_seconds=60)) is not None:
            with lock:
                claimed.append(got.id)
            queue.release(engine, got.id, name, outcome="succeeded")

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    with session_scope(engine) as s:
        assert set(s.scalars(select(Job.status))) == {"succeeded"}
