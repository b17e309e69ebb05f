"""Queue workers running real ingests: in this process (as `recordbank serve` runs them) and as
`recordbank worker` processes — claims exactly once across processes, and a worker killed
mid-job whose job another worker resumes to the rows of one clean run."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import select
from store_digest import cli as _cli
from store_digest import digest
from store_digest import run_env as _env

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest import queue
from recordbank.ingest.sources import file_checksum
from recordbank.ingest.worker import Worker, options_from_json, retryable
from recordbank.runtime import Runtime
from recordbank.sample import HEADER, generate_people, write_csv


def people_file(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / f"people_{seed}.csv", generate_people(n, seed=seed), HEADER)


def enqueue(engine: sqlalchemy.Engine, path: Path, **options: Any) -> int:
    checksum, size = file_checksum(path)
    return queue.enqueue(engine, path=str(path), file_name=path.name, source="test",
                         checksum=checksum, size=size, options=options, origin="upload").job_id


def job(engine: sqlalchemy.Engine, job_id: int) -> Job:
    with session_scope(engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def stored(rt: Runtime, job_id: int) -> int:
    return int(rt.store.scalar(f"SELECT count() FROM records WHERE job_id = {int(job_id)}"))


def leftover_tables(rt: Runtime) -> int:
    return int(rt.store.scalar(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() "
        "AND (name LIKE 'clean\\\\_%' OR name LIKE 'stg\\\\_%')"))


def test_a_queued_file_is_ingested_once(runtime: Runtime, tmp_path: Path) -> None:
    rt = runtime
    jid = enqueue(rt.engine, people_file(tmp_path, 400, seed=1))
    worker = Worker(rt, lease_seconds=5, poll_seconds=0.1)
    assert worker.run_once() == jid
    done = job(rt.engine, jid)
    assert (done.status, done.attempts, done.lease_owner) == ("succeeded", 1, None)
    assert done.rows_read == 400 and done.rows_inserted == stored(rt, jid) > 0
    assert done.progress is not None  # the last report is written with the outcome
    assert (done.progress["stage"], done.progress["rows"]) == ("done", 400)
    assert worker.run_once() is None  # nothing left
    assert leftover_tables(rt) == 0


def test_a_file_that_is_not_data_fails_for_good(runtime: Runtime, tmp_path: Path) -> None:
    bad = tmp_path / "photo.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    jid = enqueue(runtime.engine, bad)
    assert Worker(runtime, lease_seconds=5).run_once() == jid
    failed = job(runtime.engine, jid)
    assert failed.status == "failed" and failed.error and failed.error_code
    assert not retryable(failed.error_code)  # the same bytes would fail the same way
    assert failed.next_attempt_at is not None and failed.lease_owner is None
    assert stored(runtime, jid) == 0


def test_a_file_gone_from_the_landing_folder_fails_with_its_reason(runtime: Runtime,
                                                                   tmp_path: Path) -> None:
    path = people_file(tmp_path, 10, seed=2)
    jid = enqueue(runtime.engine, path)
    path.unlink()
    Worker(runtime, lease_seconds=5).run_once()
    gone = job(runtime.engine, jid)
    assert gone.status == "failed" and "landing folder" in (gone.error or "")


def test_cancel_stops_a_running_job_and_leaves_nothing(runtime: Runtime, tmp_path: Path) -> None:
    rt = runtime
    jid = enqueue(rt.engine, people_file(tmp_path, 300, seed=3))
    worker = Worker(rt, lease_seconds=5)
    claimed = queue.claim_next(rt.engine, worker.name, lease_seconds=5)
    assert claimed is not None and claimed.id == jid
    assert queue.request_cancel(rt.engine, jid) == "running"
    assert worker.run_claimed(claimed) == "cancelled"  # stopped at its first stage boundary
    assert job(rt.engine, jid).status == "cancelled"
    assert stored(rt, jid) == 0 and leftover_tables(rt) == 0
    assert queue.retry(rt.engine, jid) == "queued"  # and it can be queued again
    assert worker.run_once() == jid and job(rt.engine, jid).status == "succeeded"


def test_a_worker_that_lost_its_lease_touches_nothing(runtime: Runtime, tmp_path: Path) -> None:
    rt = runtime
    jid = enqueue(rt.engine, people_file(tmp_path, 200, seed=4))
    slow, other = Worker(rt, lease_seconds=5), Worker(rt, lease_seconds=5)
    first = queue.claim_next(rt.engine, slow.name, lease_seconds=1)
    assert first is not None
    later = datetime.now(UTC) + timedelta(seconds=2)  # the slow worker's lease ran out
    taken = queue.claim_next(rt.engine, other.name, lease_seconds=60, now=later)
    assert taken is not None and taken.id == jid and taken.resume
    assert slow.run_claimed(first) == "lost"
    held = job(rt.engine, jid)
    assert (held.status, held.lease_owner) == ("running", other.name)
    assert stored(rt, jid) == 0
    assert other.run_claimed(taken) == "succeeded" and stored(rt, jid) > 0


def test_stored_options_come_back_and_unknown_ones_are_ignored() -> None:
    opts = options_from_json({"source": "crm", "date_order": "DMY", "worker": "h:1",
                              "mapping_file": "/m.yaml", "format": None})
    assert (opts.source, opts.date_order, opts.format) == ("crm", "DMY", None)
    assert opts.mapping_file == Path("/m.yaml")
    assert retryable("ingest:internal") and not retryable("format:unsupported")


# --- worker processes -------------------------------------------------------------------------

def _engine(database_url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(database_url.replace("postgresql://",
                                                         "postgresql+psycopg://", 1))


@pytest.mark.slow
def test_two_worker_processes_take_twenty_jobs_exactly_once(tmp_path: Path,
                                                            database_url: str) -> None:
    """Each process has its own chDB store (one process per store); the queue is shared."""
    files = [people_file(tmp_path / "landing", 2000, seed=100 + i) for i in range(20)]
    envs = [_env(tmp_path / f"w{i}", database_url) for i in range(2)]
    # the first CLI call migrates the shared DB; then both workers start together
    subprocess.run(_cli("worker", "--until-idle"), env=envs[0], check=True, timeout=120,
                   capture_output=True)
    engine = _engine(database_url)
    try:
        ids = [enqueue(engine, f) for f in files]
        procs = [subprocess.Popen(_cli("worker", "--until-idle", "--poll", "0.05"), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for env in envs]
        for p in procs:
            out, _ = p.communicate(timeout=600)
            assert p.returncode == 0, out
        with engine.connect() as conn:
            rows = conn.execute(select(Job.id, Job.status, Job.attempts, Job.rows_inserted)
                                .where(Job.id.in_(ids))).all()
    finally:
        engine.dispose()
    assert {r.status for r in rows} == {"succeeded"} and {r.attempts for r in rows} == {1}
    digests = [digest(env, per_job=True) for env in envs]
    seen = [j for d in digests for j, _ in d["per_job"]]
    assert sorted(seen) == sorted(ids)  # every job's rows in exactly one store
    counts = {j: c for d in digests for j, c in d["per_job"]}
    assert all(counts[r.id] == r.rows_inserted for r in rows)
    print("jobs per worker process:", [len(d["per_job"]) for d in digests])


@pytest.mark.slow
def test_a_killed_worker_s_job_is_resumed_to_one_clean_run(tmp_path: Path,
                                                           database_url: str) -> None:
    big = people_file(tmp_path / "landing", 300_000, seed=7)
    clean_env = _env(tmp_path / "clean", f"sqlite:///{tmp_path / 'clean.db'}")
    subprocess.run(_cli("ingest", "-q", str(big)), env=clean_env, check=True, timeout=300,
                   capture_output=True)
    expected = digest(clean_env)

    env = _env(tmp_path / "service", database_url)
    subprocess.run(_cli("worker", "--until-idle"), env=env, check=True, timeout=120,
                   capture_output=True)  # migrate
    engine = _engine(database_url)
    try:
        jid = enqueue(engine, big)
        first = subprocess.Popen(_cli("worker", "--lease", "2", "--poll", "0.05"), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it mid-transform
            with engine.connect() as conn:
                stage = conn.execute(select(Job.stage).where(Job.id == jid)).scalar()
            if stage == "transform":
                time.sleep(0.3)
                break
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        time.sleep(2.5)  # its lease runs out
        second = subprocess.run(_cli("worker", "--until-idle", "--lease", "5"), env=env,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        with engine.connect() as conn:
            done = conn.execute(select(Job.status, Job.attempts).where(Job.id == jid)).one()
    finally:
        engine.dispose()
    assert done.status == "succeeded" and done.attempts == 2
    got = digest(env)
    assert {k: got[k] for k in ("records", "unique", "digest")} == \
        {k: expected[k] for k in ("records", "unique", "digest")}
