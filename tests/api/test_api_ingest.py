"""Ingestion over HTTP: uploads into the queue, jobs, cancel/retry, the live event stream and
the rejects CSV. Job states are driven through the real queue (claim_next/renew_lease/release)
from the test, playing the worker; the app's own workers are off (ingest_workers=0)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from apikit import Api, api_runtime, ingest_api, live_server
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from recordbank.api.app import create_app
from recordbank.db.models import IngestedFile, Job
from recordbank.db.session import session_scope
from recordbank.ingest import queue
from recordbank.ingest.sources import file_checksum
from recordbank.runtime import Runtime
from recordbank.store.client import Store
from recordbank.usage.models import UsageRecord

UPLOADS = "/v1/ingest/uploads"


@pytest.fixture
def api(runtime: Runtime, database_url: str) -> Iterator[Api]:
    with ingest_api(runtime, database_url) as a:
        yield a


def ingester(api: Api) -> str:
    return api.user(scopes=("ingest",))[1]


def landing_files(api: Api) -> list[Path]:
    root = api.runtime.settings.resolved_landing_dir()
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload_raw(api: Api, key: str, path: Path, **params: str) -> httpx.Response:
    return api.post(UPLOADS, key, params={"filename": path.name, **params},
                    content=path.read_bytes(),
                    headers={"Content-Type": "application/octet-stream"})


def upload_multipart(api: Api, key: str, path: Path, name: str | None = None,
                     **params: str) -> httpx.Response:
    return api.post(UPLOADS, key, params=params,
                    files={"file": (name or path.name, path.read_bytes(), "text/plain")})


def enqueue(api: Api, n: int, *, source: str = "s", origin: str = "upload") -> int:
    path = api.runtime.settings.data_dir / "queued" / f"f{n}.csv"  # a retry needs its file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"n\n{n}\n")
    return queue.enqueue(api.runtime.engine, path=str(path), file_name=f"f{n}.csv",
                         source=source, checksum=f"{n:064x}", size=10, options={},
                         origin=origin).job_id


def job_row(api: Api, job_id: int) -> Job:
    with session_scope(api.runtime.engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


# --- uploads -----------------------------------------------------------------------------------

def test_uploads_queue_once_per_content(api: Api, corpus: Path) -> None:
    key = ingester(api)
    sakila = corpus / "sakila" / "sakila-data.sql"  # 3.5 MB: over the 1 MiB JSON body limit
    checksum, size = file_checksum(sakila)
    r = upload_raw(api, key, sakila, source="sakila", date_order="DMY", region="us")
    assert r.status_code == 202, r.text
    body = r.json()
    job, meta = body["data"], body["metadata"]
    assert meta == {"kind": "queued", "checksum": checksum, "size_bytes": size,
                    "recorded_as": None}
    assert (job["status"], job["origin"], job["source"], job["file_name"], job["checksum"],
            job["size_bytes"]) == ("queued", "upload", "sakila", "sakila-data.sql", checksum,
                                   size)
    assert job["options"]["date_order"] == "DMY" and job["options"]["region"] == "US"
    assert r.headers["Location"] == f"/v1/ingest/jobs/{job['id']}"
    landed = api.runtime.settings.resolved_landing_dir() / checksum / "sakila-data.sql"
    assert landing_files(api) == [landed] and landed.read_bytes() == sakila.read_bytes()
    assert job_row(api, job["id"]).path == str(landed)

    # the same bytes again, as multipart and under another name: the job already waiting
    for again in (upload_multipart(api, key, sakila),
                  upload_multipart(api, key, sakila, name="copy.sql")):
        assert again.status_code == 202, again.text
        assert again.json()["data"]["id"] == job["id"]
        assert again.json()["metadata"]["kind"] == "already-queued"
    assert landing_files(api) == [landed]  # no second copy kept

    # once ingested (the worker registers the checksum), the content is a duplicate
    with session_scope(api.runtime.engine) as s:
        s.add(IngestedFile(checksum=checksum, size_bytes=size, name="sakila-data.sql",
                           job_id=job["id"], first_seen=datetime.now(UTC)))
    dup = upload_multipart(api, key, sakila, name="other.sql")
    assert dup.status_code == 202
    assert dup.json()["data"]["id"] == job["id"]  # the job that ingested it
    meta = dup.json()["metadata"]
    assert meta["kind"] == "duplicate" and meta["recorded_as"] not in (None, job["id"])
    recorded = job_row(api, meta["recorded_as"])
    assert (recorded.status, recorded.duplicate_of) == ("succeeded", job["id"])
    assert landing_files(api) == [landed]

    # the usage log keeps a row per upload, without the body
    api.app.state.ctx.usage.flush(timeout=5)
    with session_scope(api.runtime.engine) as s:
        logged = s.scalars(select(UsageRecord).where(UsageRecord.path == UPLOADS)
                           .order_by(UsageRecord.id)).all()
        assert [u.status for u in logged] == [202, 202, 202, 202]
        assert all("body" not in (u.params or {}) for u in logged)
        assert logged[0].params == {"filename": "sakila-data.sql", "source": "sakila",
                                    "date_order": "DMY", "region": "us"}


def test_multipart_upload_of_a_csv(api: Api, corpus: Path) -> None:
    key = ingester(api)
    src = corpus / "csv-spectrum" / "csvs" / "comma_in_quotes.csv"
    r = upload_multipart(api, key, src, format="csv")
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["checksum"] == file_checksum(src)[0] and job["status"] == "queued"
    assert job["source"] == "comma_in_quotes" and job["options"]["format"] == "csv"
    assert [p.read_bytes() for p in landing_files(api)] == [src.read_bytes()]
    # the queue hands the landed file to a worker
    claimed = queue.claim_next(api.runtime.engine, "w", lease_seconds=30)
    assert claimed is not None and claimed.id == job["id"]
    assert Path(claimed.path).read_bytes() == src.read_bytes()
    assert claimed.options["format"] == "csv"


def test_over_the_upload_limit_is_413_and_leaves_nothing(runtime: Runtime, database_url: str,
                                                        corpus: Path) -> None:
    sakila = corpus / "sakila" / "sakila-data.sql"
    with ingest_api(runtime, database_url, max_upload_bytes=100_000) as api:
        key = ingester(api)

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            data = sakila.read_bytes()
            for i in range(0, len(data), 65_536):
                yield data[i:i + 65_536]

        answers = [upload_raw(api, key, sakila), upload_multipart(api, key, sakila),
                   api.post(UPLOADS, key, params={"filename": "s.sql"}, content=chunked())]
        for r in answers:
            assert r.status_code == 413, r.text
            assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert landing_files(api) == []
        with session_scope(api.runtime.engine) as s:
            assert s.scalars(select(Job)).all() == []
        small = corpus / "csv-spectrum" / "csvs" / "simple.csv"
        assert upload_raw(api, key, small).status_code == 202  # under the limit: taken


def test_unknown_types_are_415(api: Api, corpus: Path, tmp_path: Path) -> None:
    key = ingester(api)
    png = tmp_path / "people.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    exe = corpus / "csv-spectrum" / "csvs" / "simple.csv"
    cases = [
        upload_raw(api, key, png),
        upload_multipart(api, key, png),
        upload_multipart(api, key, exe, name="setup.exe"),
        api.post(UPLOADS, key, params={"filename": "setup.exe"}, content=b"a,b\n"),
        api.post(UPLOADS, key, content=b"a,b\n"),  # octet-stream without a name
        api.post(UPLOADS, key, params={"filename": "a.csv"}, content=b"a,b\n",
                 headers={"Content-Type": "image/png"}),
    ]
    for r in cases:
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    empty = api.post(UPLOADS, key, params={"filename": "a.csv"}, content=b"")
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "VALIDATION_ERROR"
    bad = api.post(UPLOADS, key, params={"filename": "a.csv", "encoding": "no-such-codec"},
                   content=b"a,b\n")
    assert bad.status_code == 422
    assert api.post(UPLOADS, key, params={"filename": "a.csv", "format": "gzip"},
                    content=b"a,b\n").status_code == 422
    assert landing_files(api) == []


def test_ingest_routes_need_the_ingest_scope(api: Api, corpus: Path) -> None:
    src = corpus / "csv-spectrum" / "csvs" / "simple.csv"
    _, plain = api.user(scopes=("query", "export"))
    _, admin = api.user(role="admin", scopes=("query",))
    jid = enqueue(api, 1)
    for method, path in (("post", UPLOADS), ("get", "/v1/ingest/jobs"),
                         ("get", f"/v1/ingest/jobs/{jid}"),
                         ("post", f"/v1/ingest/jobs/{jid}/cancel"),
                         ("post", f"/v1/ingest/jobs/{jid}/retry"),
                         ("get", f"/v1/ingest/jobs/{jid}/events"),
                         ("get", f"/v1/ingest/jobs/{jid}/rejects.csv")):
        none = getattr(api, method)(path)
        assert none.status_code == 401 and none.json()["error"]["code"] == "MISSING_API_KEY"
        denied = getattr(api, method)(path, plain)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    assert upload_raw(api, plain, src).status_code == 403
    assert landing_files(api) == []
    assert upload_raw(api, admin, src).status_code == 202  # admins have every scope
    assert api.get("/v1/ingest/jobs", admin).status_code == 200


# --- jobs --------------------------------------------------------------------------------------

def test_list_filters_and_pages_newest_first(api: Api) -> None:
    key = ingester(api)
    engine = api.runtime.engine
    ids = [enqueue(api, n, source="crm" if n % 2 else "web",
                   origin="upload" if n < 4 else "cli") for n in range(6)]
    claimed = queue.claim_next(engine, "w", lease_seconds=30)
    assert claimed is not None and claimed.id == ids[0]
    queue.release(engine, ids[0], "w", outcome="failed", error="bad file",
                  error_code="format:unsupported")
    old = datetime(2030, 1, 1, tzinfo=UTC)
    with session_scope(engine) as s:
        s.execute(update(Job).where(Job.id == ids[1]).values(created_at=old))

    def listed(**params: Any) -> tuple[list[int], dict[str, Any]]:
        r = api.get("/v1/ingest/jobs", key, params=params)
        assert r.status_code == 200, r.text
        return [j["id"] for j in r.json()["data"]], r.json()["metadata"]

    assert listed()[0] == ids[::-1]
    assert listed(status="failed")[0] == [ids[0]]
    assert listed(status="queued")[0] == ids[1:][::-1]
    assert listed(source="crm")[0] == [ids[5], ids[3], ids[1]]
    assert listed(origin="cli")[0] == [ids[5], ids[4]]
    assert listed(origin="upload", source="web")[0] == [ids[2], ids[0]]
    assert listed(since="2030-01-01T00:00:00Z", until="2030-01-02")[0] == [ids[1]]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert listed(until=tomorrow)[0] == [ids[5], ids[4], ids[3], ids[2], ids[0]]
    page, meta = listed(limit=2, offset=1)
    assert page == [ids[4], ids[3]]
    assert meta == {"total": 6, "limit": 2, "offset": 1, "returned": 2}
    assert listed(offset=10)[0] == []
    first = api.get("/v1/ingest/jobs", key, params={"status": "failed"}).json()["data"][0]
    assert first["error"] == {"code": "format:unsupported", "message": "bad file"}
    assert "mapping_report" not in first
    for bad in ({"status": "done"}, {"limit": 0}, {"limit": 1001}, {"offset": -1},
                {"since": "2030-01-02", "until": "2030-01-01"}, {"since": "yesterday"}):
        r = api.get("/v1/ingest/jobs", key, params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_job_detail_and_unknown_ids(api: Api) -> None:
    key = ingester(api)
    engine = api.runtime.engine
    jid = enqueue(api, 7)
    assert queue.claim_next(engine, "w", lease_seconds=30) is not None
    progress = {"stage": "transform", "rows": 500, "expected": 1000, "rejected": 3,
                "rows_per_s": 250.0, "updated_at": datetime.now(UTC).isoformat()}
    queue.renew_lease(engine, jid, "w", lease_seconds=30, progress=progress)
    report = {"files": [{"file": "f7.csv", "format": "csv", "report": []}]}
    with session_scope(engine) as s:
        s.execute(update(Job).where(Job.id == jid).values(
            rows_read=500, mapping_report=report, timings={"open": 0.1}))
    r = api.get(f"/v1/ingest/jobs/{jid}", key)
    assert r.status_code == 200, r.text
    job = r.json()["data"]
    assert (job["status"], job["stage"], job["attempts"]) == ("running", "transform", 1)
    assert job["progress"] == progress and job["rows_per_s"] == 250.0
    assert job["counts"] == {"read": 500, "inserted": 0, "duplicate": 0, "quarantined": 0}
    assert job["mapping_report"] == report and job["timings"] == {"open": 0.1}
    assert job["started_at"] and job["finished_at"] is None and job["error"] is None
    assert queue.release(engine, jid, "w", outcome="succeeded") == "succeeded"
    with session_scope(engine) as s:
        s.execute(update(Job).where(Job.id == jid).values(timings={"total": 2.0}))
    done = api.get(f"/v1/ingest/jobs/{jid}", key).json()["data"]
    assert done["finished_at"] and done["rows_per_s"] == 250.0  # 500 rows in 2 s
    missing = 10**9
    for method, path in (("get", f"/v1/ingest/jobs/{missing}"),
                         ("post", f"/v1/ingest/jobs/{missing}/cancel"),
                         ("post", f"/v1/ingest/jobs/{missing}/retry"),
                         ("get", f"/v1/ingest/jobs/{missing}/events"),
                         ("get", f"/v1/ingest/jobs/{missing}/rejects.csv")):
        r = getattr(api, method)(path, key)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", path
    for bad in ("0", "-1", "x", str(2**63)):
        assert api.get(f"/v1/ingest/jobs/{bad}", key).status_code == 422


def test_cancel_and_retry(api: Api) -> None:
    key = ingester(api)
    engine = api.runtime.engine
    waiting = enqueue(api, 1)
    r = api.post(f"/v1/ingest/jobs/{waiting}/cancel", key)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "cancelled" and r.json()["metadata"]["cancel"] == "done"
    again = api.post(f"/v1/ingest/jobs/{waiting}/cancel", key)
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
    r = api.post(f"/v1/ingest/jobs/{waiting}/retry", key)
    assert r.status_code == 200 and r.json()["data"]["status"] == "queued"
    assert api.post(f"/v1/ingest/jobs/{waiting}/retry", key).status_code == 409  # queued

    claimed = queue.claim_next(engine, "w", lease_seconds=30)
    assert claimed is not None and claimed.id == waiting
    r = api.post(f"/v1/ingest/jobs/{waiting}/cancel", key)  # running: asked to stop
    assert r.status_code == 202 and r.json()["metadata"]["cancel"] == "requested"
    assert r.json()["data"]["status"] == "running" and r.json()["data"]["cancel_requested"]
    assert queue.renew_lease(engine, waiting, "w", lease_seconds=30).cancel_requested
    assert queue.release(engine, waiting, "w", outcome="failed", error="boom",
                         error_code="ingest:internal") == "failed"
    r = api.post(f"/v1/ingest/jobs/{waiting}/retry", key)
    assert r.status_code == 200, r.text
    job = r.json()["data"]
    assert job["status"] == "queued" and not job["cancel_requested"]
    assert job["max_attempts"] == 1 + queue.DEFAULT_ATTEMPTS
    again = queue.claim_next(engine, "w2", lease_seconds=30)
    assert again is not None and again.id == waiting and again.attempts == 2
    assert queue.release(engine, waiting, "w2", outcome="succeeded") == "succeeded"
    for action in ("retry", "cancel"):  # finished: nothing to retry or cancel
        r = api.post(f"/v1/ingest/jobs/{waiting}/{action}", key)
        assert r.status_code == 409, (action, r.text)


# --- events ------------------------------------------------------------------------------------

@pytest.fixture
def live(runtime: Runtime, database_url: str, free_port: int) -> Iterator[tuple[str, Api]]:
    with live_server(runtime, database_url, free_port, ingest_workers=0) as served:
        yield served


def read_events(base: str, key: str, job_id: int, timeout: float = 30,
                seen: Callable[[list[tuple[float, str, dict[str, Any]]]], None] | None = None,
                ) -> list[tuple[float, str, dict[str, Any]]]:
    """(arrival time, event, data) until the server ends the stream (or the timeout);
    `seen` is called with the events so far after each one."""
    events: list[tuple[float, str, dict[str, Any]]] = []
    name, data = "", ""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=timeout) as client, client.stream(
            "GET", f"/v1/ingest/jobs/{job_id}/events", headers={"X-API-Key": key}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            assert time.monotonic() < deadline, f"the stream did not end: {events}"
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and name:
                events.append((time.monotonic(), name, json.loads(data)))
                name, data = "", ""
                if seen is not None:
                    seen(events)
    return events


def play_worker(api: Api, job_id: int, outcome: str, started: threading.Event,
                repeated: threading.Event) -> None:
    """Wait a little, claim, report progress 10 times, then stay silent until the stream has
    repeated the last report (a client hears from a running job even when nothing changes),
    then end."""
    engine = api.runtime.engine
    time.sleep(0.6)
    claimed = queue.claim_next(engine, "test-worker", lease_seconds=30)
    assert claimed is not None and claimed.id == job_id
    started.set()
    for i in range(1, 11):
        queue.renew_lease(engine, job_id, "test-worker", lease_seconds=30, progress={
            "stage": "read" if i < 6 else "transform", "rows": i * 100, "expected": 1000,
            "rejected": i, "rows_per_s": 400.0, "updated_at": datetime.now(UTC).isoformat()})
        time.sleep(0.25)
    repeated.wait(timeout=30)  # no new report meanwhile
    queue.release(engine, job_id, "test-worker", outcome=outcome, error="it broke"
                  if outcome == "failed" else None, error_code="ingest:internal")


@pytest.mark.parametrize("outcome, final", [("succeeded", "completed"), ("failed", "failed")])
def test_events_follow_a_job_live(live: tuple[str, Api], outcome: str, final: str) -> None:
    base, api = live
    key = ingester(api)
    jid = enqueue(api, 1)
    started, repeated = threading.Event(), threading.Event()

    def seen(events: list[tuple[float, str, dict[str, Any]]]) -> None:
        if sum(e[1] == "progress" and e[2]["rows"] == 1000 for e in events) >= 2:
            repeated.set()

    worker = threading.Thread(target=play_worker, args=(api, jid, outcome, started, repeated))
    worker.start()
    try:
        events = read_events(base, key, jid, seen=seen)
    finally:
        repeated.set()
        worker.join()
    names = [e[1] for e in events]
    assert names[0] == "started" and names[-1] == final, names
    assert set(names[1:-1]) == {"progress"} and len(names) >= 4, names
    progress = [e for e in events if e[1] == "progress"]
    rows = [e[2]["rows"] for e in progress]
    assert rows == sorted(rows) and rows.count(1000) >= 2, rows  # in order; the last repeated
    assert {e[2]["status"] for e in progress} == {"running"}
    assert progress[-1][2]["counts"] == {"read": 0, "inserted": 0, "duplicate": 0,
                                         "quarantined": 0}
    assert progress[-1][2]["stage"] == "transform" and progress[-1][2]["expected"] == 1000
    assert events[-1][2]["id"] == jid and events[-1][2]["status"] == outcome
    if outcome == "failed":
        assert events[-1][2]["error"] == {"code": "ingest:internal", "message": "it broke"}


def test_events_of_a_finished_job_end_at_once(live: tuple[str, Api]) -> None:
    base, api = live
    key = ingester(api)
    jid = enqueue(api, 1)
    assert queue.request_cancel(api.runtime.engine, jid) == "cancelled"
    started = time.monotonic()
    events = read_events(base, key, jid)
    assert time.monotonic() - started < 2
    assert [(e[1], e[2]["status"]) for e in events] == [("cancelled", "cancelled")]


# --- rejects -----------------------------------------------------------------------------------

def test_rejects_csv_streams_the_quarantine(api: Api) -> None:
    key = ingester(api)
    jid, other = enqueue(api, 1), enqueue(api, 2)
    rows = [
        (jid, 7, ["bad-email", "no-identity"], {"name": "=HYPERLINK(\"x\")", "phone": "+1415"}),
        (jid, 2, ["=cmd|' /C calc'!A0"], {"note": 'say "hi", then\nleave', "n": "-12.5"}),
        (jid, 3, ["-5"], {}),
        (other, 1, ["other-job"], {"x": "y"}),
    ]
    api.runtime.store.insert(
        "quarantine", ["job_id", "source", "source_file", "source_row", "reasons", "raw",
                       "quarantined_at"],
        [(j, "s", "f.csv", n, reasons, raw, datetime.now(UTC)) for j, n, reasons, raw in rows])
    r = api.get(f"/v1/ingest/jobs/{jid}/rejects.csv", key)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == ["source_row", "reasons", "raw"]
    assert [row[0] for row in table[1:]] == ["2", "3", "7"]
    by_row = {row[0]: row for row in table[1:]}
    assert by_row["7"][1] == "bad-email;no-identity"
    assert json.loads(by_row["7"][2]) == {"name": "=HYPERLINK(\"x\")", "phone": "+1415"}
    assert by_row["2"][1] == "'=cmd|' /C calc'!A0"  # a formula is neutralized
    assert json.loads(by_row["2"][2]) == {"note": 'say "hi", then\nleave', "n": "-12.5"}
    assert by_row["3"][1] == "-5" and json.loads(by_row["3"][2]) == {}  # plain number kept
    assert list(json.loads(by_row["7"][2])) == ["name", "phone"]  # the file's column order
    empty = api.get(f"/v1/ingest/jobs/{enqueue(api, 3)}/rejects.csv", key)
    assert empty.status_code == 200 and empty.text == "source_row,reasons,raw\n"


def test_rejects_csv_with_the_store_down_is_503(runtime: Runtime, database_url: str) -> None:
    rt = api_runtime(runtime, database_url, ingest_workers=0)
    broken = Runtime(settings=rt.settings, store=Store("http://127.0.0.1:9", lazy=True),
                     engine=rt.engine)
    with TestClient(create_app(runtime=broken)) as client:
        api = Api(client, broken, client.app)  # type: ignore[arg-type]
        key = ingester(api)
        r = api.get(f"/v1/ingest/jobs/{enqueue(api, 1)}/rejects.csv", key)
        assert r.status_code == 503 and r.json()["error"]["code"] == "STORE_UNAVAILABLE"
