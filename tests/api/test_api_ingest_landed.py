"""Uploads over HTTP and the landing folder: simultaneous uploads of one content queue one job
(the database's unique rule), an ingested upload's file is deleted while its job, rejects CSV
and events still answer, and a retry that could only fail is refused with 409 and its reason,
never a 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apikit import Api, ingest_api, live_server
from sqlalchemy import select

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest import queue
from recordbank.ingest.sources import file_checksum
from recordbank.ingest.worker import Worker
from recordbank.runtime import Runtime
from recordbank.sample import HEADER, expected_counts, generate_people, write_csv

UPLOADS = "/v1/ingest/uploads"
ROWS = 300
SENDERS = 12


@pytest.fixture
def api(runtime: Runtime, database_url: str) -> Iterator[Api]:
    with ingest_api(runtime, database_url) as a:
        yield a


@pytest.fixture
def live(runtime: Runtime, database_url: str, free_port: int) -> Iterator[tuple[str, Api]]:
    with live_server(runtime, database_url, free_port, ingest_workers=0) as served:
        yield served


def ingester(api: Api) -> str:
    return api.user(scopes=("ingest",))[1]


def people(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / f"people_{seed}.csv", generate_people(ROWS, seed=seed), HEADER)


def upload(api: Api, key: str, path: Path, name: str | None = None) -> httpx.Response:
    r = api.post(UPLOADS, key, params={"filename": name or path.name},
                 content=path.read_bytes(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 202, r.text
    return r


def landing_files(api: Api) -> list[Path]:
    root = api.runtime.settings.resolved_landing_dir()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def job_row(api: Api, job_id: int) -> Job:
    with session_scope(api.runtime.engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def fail(api: Api, job_id: int) -> None:
    """Play a worker whose attempt fails for good."""
    claimed = queue.claim_next(api.runtime.engine, "w", lease_seconds=30)
    assert claimed is not None and claimed.id == job_id
    assert queue.release(api.runtime.engine, job_id, "w", outcome="failed", error="boom",
                         error_code="format:bad") == "failed"


def test_simultaneous_uploads_of_one_content_queue_one_job(live: tuple[str, Api],
                                                           tmp_path: Path) -> None:
    base, api = live
    key = ingester(api)
    body = people(tmp_path, seed=1).read_bytes()
    start = threading.Barrier(SENDERS)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        name = "same.csv" if i % 2 else f"name{i}.csv"  # one name, and names of their own
        with httpx.Client(base_url=base, timeout=60) as client:
            start.wait()
            r = client.post(UPLOADS, params={"filename": name}, content=body,
                            headers={"X-API-Key": key, "Content-Type": "text/csv"})
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [202] * SENDERS, [r.text for r in answers]
    kinds = [r.json()["metadata"]["kind"] for r in answers]
    assert sorted(kinds) == ["already-queued"] * (SENDERS - 1) + ["queued"]
    ids = {r.json()["data"]["id"] for r in answers}
    assert len(ids) == 1
    [jid] = ids
    with session_scope(api.runtime.engine) as s:
        assert list(s.scalars(select(Job.id))) == [jid]  # no other job, not even a finished one
    assert landing_files(api) == [Path(job_row(api, jid).path)]  # the other copies are gone


def test_an_ingested_upload_is_deleted_and_its_job_still_answers(api: Api,
                                                                 tmp_path: Path) -> None:
    key = ingester(api)
    src = people(tmp_path, seed=2)
    jid = upload(api, key, src).json()["data"]["id"]
    landed = Path(job_row(api, jid).path)
    assert landing_files(api) == [landed]
    assert Worker(api.runtime, lease_seconds=10).run_once() == jid
    assert landing_files(api) == [] and not landed.parent.exists()

    r = api.get(f"/v1/ingest/jobs/{jid}", key)
    assert r.status_code == 200, r.text
    job = r.json()["data"]
    quarantined = expected_counts(ROWS, seed=2).quarantined
    assert (job["status"], job["file_name"], job["counts"]["read"]) == \
        ("succeeded", src.name, ROWS)
    assert job["counts"]["quarantined"] == quarantined > 0 and job["mapping_report"]
    r = api.get(f"/v1/ingest/jobs/{jid}/rejects.csv", key)
    assert r.status_code == 200 and len(r.text.splitlines()) == 1 + quarantined
    with api.client.stream("GET", f"/v1/ingest/jobs/{jid}/events",
                           headers={"X-API-Key": key}) as events:
        assert events.status_code == 200 and "event: completed" in events.read().decode()

    r = api.post(f"/v1/ingest/jobs/{jid}/retry", key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    assert "only failed or cancelled jobs can be retried" in r.json()["error"]["message"]

    again = upload(api, key, src)  # the same content again: answered, nothing kept
    assert again.json()["metadata"]["kind"] == "duplicate"
    assert again.json()["data"]["id"] == jid and landing_files(api) == []


def test_operators_may_keep_landed_files(runtime: Runtime, database_url: str,
                                         tmp_path: Path) -> None:
    with ingest_api(runtime, database_url, keep_landed_files=True) as api:
        key = ingester(api)
        jid = upload(api, key, people(tmp_path, seed=3)).json()["data"]["id"]
        assert Worker(api.runtime, lease_seconds=10).run_once() == jid
        assert job_row(api, jid).status == "succeeded"
        assert landing_files(api) == [Path(job_row(api, jid).path)]


def test_a_retry_that_could_only_fail_is_409_with_its_reason(api: Api, tmp_path: Path) -> None:
    key = ingester(api)
    src = people(tmp_path, seed=4)
    old = upload(api, key, src).json()["data"]["id"]
    fail(api, old)
    landed = Path(job_row(api, old).path)
    assert landed.exists()  # a failed job keeps its file

    newer = upload(api, key, src).json()  # the same content again: a new job, same file
    assert newer["metadata"]["kind"] == "queued"
    newer_id = newer["data"]["id"]
    r = api.post(f"/v1/ingest/jobs/{old}/retry", key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"
    assert f"job {newer_id} with the same content is queued" in r.json()["error"]["message"]
    assert job_row(api, old).status == "failed"

    assert api.post(f"/v1/ingest/jobs/{newer_id}/cancel", key).status_code == 200
    r = api.post(f"/v1/ingest/jobs/{old}/retry", key)
    assert r.status_code == 200 and r.json()["data"]["status"] == "queued"
    fail(api, old)

    landed.unlink()  # gone (an operator, a full disk ...): the retry could only fail
    r = api.post(f"/v1/ingest/jobs/{old}/retry", key)
    assert r.status_code == 409 and "not there any more" in r.json()["error"]["message"]
    assert job_row(api, old).status == "failed"


def test_an_older_copy_goes_once_its_content_is_ingested(api: Api, tmp_path: Path) -> None:
    key = ingester(api)
    src = people(tmp_path, seed=5)
    old = upload(api, key, src).json()["data"]["id"]
    fail(api, old)
    landed = Path(job_row(api, old).path)
    # the same content is ingested from the watched folder (the user's file: kept)
    checksum, size = file_checksum(src)
    folder_job = queue.enqueue(api.runtime.engine, path=str(src), file_name=src.name,
                               source="t", checksum=checksum, size=size, options={},
                               origin="folder").job_id
    assert Worker(api.runtime, lease_seconds=10).run_once() == folder_job
    assert src.exists() and landed.parent.name == checksum
    assert landing_files(api) == []  # the failed upload's copy went with that success
    r = api.post(f"/v1/ingest/jobs/{old}/retry", key)
    assert r.status_code == 409 and f"ingested by job {folder_job}" in \
        r.json()["error"]["message"]

    again = upload(api, key, src)  # a duplicate: its copy is not kept either
    assert again.json()["metadata"]["kind"] == "duplicate"
    assert landing_files(api) == []
