"""Scheduled HTTP JSON sources against a real local HTTP server: every pagination kind, the
secret header, one JSONL file and one job per run, real ingests by a queue worker (overlapping
runs store only new records), failures with backoff, and claims that hold across threads."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from local_http import SECRET, SECRET_HEADER, PagesServer, person, serving
from sqlalchemy import Engine, func, select

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest import http_fetch, http_source
from recordbank.ingest import http_sources_model as sources
from recordbank.ingest.http_source import (
    Busy,
    Outcome,
    SourceScheduler,
    claim,
    claim_due,
    run_now,
)
from recordbank.ingest.http_sources_model import HttpSource, aware
from recordbank.ingest.worker import Worker
from recordbank.runtime import Runtime

PAGED = {"none": ("/none", "data.items", {}),
         "page": ("/page", "data.items", {"type": "page"}),
         "cursor": ("/cursor", "items", {"type": "cursor", "cursor_path": "meta.next_cursor"}),
         "link": ("/link", "", {"type": "link"})}


@pytest.fixture
def server(free_port: int) -> Any:
    with serving(free_port, [person(i) for i in range(1, 26)]) as srv:
        yield srv


def add(engine: Engine, srv: PagesServer, kind: str = "page", name: str = "crm",
        **kw: Any) -> dict[str, Any]:
    path, records_path, pagination = PAGED[kind]
    args: dict[str, Any] = {"url": srv.url(path), "records_path": records_path,
                            "pagination": pagination, "secret_header": SECRET_HEADER,
                            "secret": SECRET, "interval_seconds": 3600, **kw}
    return sources.create(engine, name=name, **args)


def landing(rt: Runtime) -> Path:
    return rt.settings.resolved_landing_dir()


def jobs(engine: Engine) -> list[Job]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def row(engine: Engine, name: str = "crm") -> HttpSource:
    with session_scope(engine) as s:
        found = s.scalars(select(HttpSource).where(HttpSource.name == name)).one()
        return found  # type: ignore[no-any-return]


def stored(rt: Runtime) -> list[str]:
    return [r[0] for r in rt.store.rows("SELECT email FROM records ORDER BY email")]


@pytest.mark.parametrize("kind", sorted(PAGED))
def test_every_pagination_kind_lands_one_jsonl_and_queues_one_job(
        runtime: Runtime, server: PagesServer, kind: str) -> None:
    add(runtime.engine, server, kind)
    outcome = run_now(runtime.engine, landing(runtime), "crm")
    pages = {"none": 1, "page": 4, "cursor": 3, "link": 3}[kind]  # "page" ends on an empty one
    assert (outcome.status, outcome.records, outcome.pages, outcome.error) == \
        ("ok", 25, pages, None)
    [job] = jobs(runtime.engine)
    assert (job.id, job.status, job.origin, job.source) == (outcome.job_id, "queued", "http",
                                                            "crm")
    assert job.options == {"format": "jsonl"}
    path = Path(job.path)
    assert path.parent.parent == landing(runtime) and path.name == "crm.jsonl"
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [person(i) for i in range(1, 26)]
    assert not any((landing(runtime) / ".incoming").iterdir())  # no temporary file left
    seen = [headers for path, headers in server.seen]
    assert len(seen) == pages and all(h.get(SECRET_HEADER) == SECRET for h in seen)
    shown = row(runtime.engine)
    assert (shown.last_status, shown.last_records, shown.last_job_id, shown.failures) == \
        ("ok", 25, job.id, 0)
    assert shown.lease_until is None
    assert aware(shown.next_run_at) - aware(shown.last_run_at) == timedelta(seconds=3600)


def test_runs_are_ingested_by_a_worker_and_overlaps_store_only_new_records(
        runtime: Runtime, server: PagesServer) -> None:
    rt = runtime
    add(rt.engine, server, "cursor")
    first = run_now(rt.engine, landing(rt), "crm")
    worker = Worker(rt, lease_seconds=10, poll_seconds=0.1)
    assert worker.run_once() == first.job_id
    done = jobs(rt.engine)[0]
    assert (done.status, done.rows_read, done.rows_inserted) == ("succeeded", 25, 25)
    assert len(stored(rt)) == 25
    nested = rt.store.rows("SELECT city, metadata FROM records WHERE email = "
                           "'person7@example.com'")  # nested JSON: mapped, or kept
    assert nested == [("Springfield", {"address.zip": "10007", "tags": '["a","b"]'})]

    server.records = [person(i) for i in range(20, 36)]  # 20-25 again, 26-35 new
    second = run_now(rt.engine, landing(rt), "crm")
    assert (second.status, second.records, second.job_kind) == ("ok", 16, "queued")
    assert worker.run_once() == second.job_id
    again = jobs(rt.engine)[1]
    assert (again.status, again.rows_read, again.rows_inserted, again.rows_duplicate) == \
        ("succeeded", 16, 10, 6)
    assert stored(rt) == sorted(f"person{i}@example.com" for i in range(1, 36))

    third = run_now(rt.engine, landing(rt), "crm")  # the very same content again
    assert (third.status, third.job_kind) == ("ok", "duplicate")
    assert worker.run_once() is None and len(stored(rt)) == 35
    # each run's file went once its job succeeded; the duplicate's copy was never kept
    assert [p for p in landing(rt).rglob("*") if p.is_file()] == []


def test_a_mapping_file_reaches_the_job(runtime: Runtime, free_port: int,
                                        tmp_path: Path) -> None:
    mapping = tmp_path / "crm.yaml"
    mapping.write_text("fields:\n  email: E-mail Address\n  name: Full Name\n")
    odd = [{"E-mail Address": f"m{i}@example.com", "Full Name": f"M {i}"} for i in range(7)]
    with serving(free_port, odd, secret=None) as srv:
        sources.create(runtime.engine, name="odd", url=srv.url("/none"),
                       records_path="data.items", mapping_file=str(mapping))
        outcome = run_now(runtime.engine, landing(runtime), "odd")
    [job] = jobs(runtime.engine)
    assert job.options == {"format": "jsonl", "mapping_file": str(mapping.resolve())}
    assert Worker(runtime, lease_seconds=10).run_once() == outcome.job_id
    assert stored(runtime) == sorted(f"m{i}@example.com" for i in range(7))


def test_without_the_secret_the_run_fails_and_the_secret_is_never_shown(
        runtime: Runtime, server: PagesServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    add(runtime.engine, server, "page", name="nokey", secret_header=None, secret=None)
    add(runtime.engine, server, "page", name="wrong", url=server.url("/fail/500"))
    refused = run_now(runtime.engine, landing(runtime), "nokey")
    assert refused.status == "failed" and "HTTP 401" in (refused.error or "")
    echoed = run_now(runtime.engine, landing(runtime), "wrong")
    assert echoed.status == "failed" and "HTTP 500" in (echoed.error or "")
    assert jobs(runtime.engine) == []
    token = SECRET.split()[1]
    shown = json.dumps([sources.list_all(runtime.engine), sources.get(runtime.engine, "wrong"),
                        refused.to_dict(), echoed.to_dict()])
    assert token not in shown and token not in caplog.text
    assert sources.get(runtime.engine, "wrong")["secret"] == "set"
    assert sources.get(runtime.engine, "nokey")["secret"] == "unset"
    assert token not in repr(sources.load(runtime.engine, "wrong"))
    assert http_fetch.redact(f"sent {SECRET} and {token}", SECRET) == "sent *** and ***"


@pytest.mark.parametrize("case", ["500", "badjson", "records_path", "not-a-list",
                                  "refused-connection"])
def test_a_failing_source_keeps_its_error_and_backs_off(
        runtime: Runtime, server: PagesServer, case: str) -> None:
    kw: dict[str, Any] = {
        "500": {"url": server.url("/fail/500")},
        "badjson": {"url": server.url("/badjson")},
        "records_path": {"records_path": "data.rows"},
        "not-a-list": {"records_path": "data"},
        "refused-connection": {"url": "http://127.0.0.1:9/none"},
    }[case]
    add(runtime.engine, server, "page", interval_seconds=100, **kw)
    expected = {"500": "HTTP 500", "badjson": "is not JSON", "records_path": "no 'data.rows'",
                "not-a-list": "not a list of records", "refused-connection": "ConnectError"}
    delays = []
    for failures in (1, 2, 3, 4):
        outcome = run_now(runtime.engine, landing(runtime), "crm")
        assert outcome.status == "failed" and expected[case] in (outcome.error or "")
        got = row(runtime.engine)
        assert (got.last_status, got.failures, got.last_error) == \
            ("failed", failures, outcome.error)
        assert got.last_records == 0 and got.last_job_id is None and got.lease_until is None
        delays.append((aware(got.next_run_at) - aware(got.last_run_at)).total_seconds())
    assert delays == [30, 60, 100, 100]  # 30 s doubling, never past the interval
    assert jobs(runtime.engine) == []
    assert not any(p.is_file() for p in landing(runtime).rglob("*"))  # nothing half-written
    sources.update(runtime.engine, "crm", {"url": server.url("/page"),
                                           "records_path": "data.items"})
    good = run_now(runtime.engine, landing(runtime), "crm")
    got = row(runtime.engine)
    assert (good.status, got.failures, got.last_error, got.last_records) == ("ok", 0, None, 25)
    assert (aware(got.next_run_at) - aware(got.last_run_at)).total_seconds() == 100


def test_pages_that_never_end_and_oversized_pages(runtime: Runtime, server: PagesServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    add(runtime.engine, server, "page", name="capped",
        pagination={"type": "page", "max_pages": 2})
    capped = run_now(runtime.engine, landing(runtime), "capped")
    assert (capped.status, capped.records, capped.pages) == ("ok", 20, 2)
    assert "max_pages" in (capped.error or "")
    add(runtime.engine, server, "page", name="same", url=server.url("/same"))
    same = run_now(runtime.engine, landing(runtime), "same")
    assert same.status == "failed" and "same as page 1" in (same.error or "")
    add(runtime.engine, server, "page", name="stuck", url=server.url("/same"),
        pagination={"type": "cursor", "cursor_path": "data.items.0.id"})
    stuck = run_now(runtime.engine, landing(runtime), "stuck")
    assert stuck.status == "failed" and "same as page" in (stuck.error or "")
    monkeypatch.setattr(http_fetch, "MAX_PAGE_BYTES", 100_000)
    add(runtime.engine, server, "none", name="big", url=server.url("/big"))
    big = run_now(runtime.engine, landing(runtime), "big")
    assert big.status == "failed" and "100,000" in (big.error or "")


def test_an_empty_source_queues_nothing(runtime: Runtime, free_port: int) -> None:
    with serving(free_port, []) as srv:
        add(runtime.engine, srv, "page")
        outcome = run_now(runtime.engine, landing(runtime), "crm")
    assert (outcome.status, outcome.records, outcome.job_id, outcome.pages) == \
        ("empty", 0, None, 1)
    assert jobs(runtime.engine) == [] and row(runtime.engine).last_status == "empty"
    assert not any(p.is_file() for p in landing(runtime).rglob("*"))


def test_the_secret_stays_on_its_own_origin(runtime: Runtime, server: PagesServer) -> None:
    away = server.url("/open", host="localhost")  # another origin, same test server
    add(runtime.engine, server, "none", name="away",
        url=server.url(f"/redirect?to={away}"))
    assert run_now(runtime.engine, landing(runtime), "away").status == "ok"
    [(path, headers)] = [s for s in server.seen if s[0].startswith("/open")]
    assert SECRET_HEADER not in headers and SECRET_HEADER.lower() not in headers
    add(runtime.engine, server, "none", name="home",
        url=server.url(f"/redirect?to={server.url('/none')}"))
    home = run_now(runtime.engine, landing(runtime), "home")
    assert home.status == "ok" and home.records == 25  # same origin: the secret went along


def test_a_due_source_is_claimed_once_by_racing_schedulers(runtime: Runtime,
                                                           server: PagesServer) -> None:
    engine = runtime.engine
    for i in range(6):
        add(engine, server, "none", name=f"s{i}", url=server.url(f"/none?s={i}"))
    schedulers = [SourceScheduler(engine, landing(runtime)) for _ in range(4)]
    results: list[list[Outcome]] = [[] for _ in schedulers]
    start = threading.Barrier(len(schedulers))

    def race(i: int) -> None:
        start.wait()
        results[i] = schedulers[i].run_due()

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(schedulers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ran = sorted(o.source for r in results for o in r)
    assert ran == [f"s{i}" for i in range(6)]  # each exactly once
    assert all(server.hits(f"/none?s={i}") == 1 for i in range(6))
    assert claim_due(engine) is None  # nothing is due before its interval
    later = datetime.now(UTC) + timedelta(seconds=3601)
    assert claim_due(engine, now=later) is not None


def test_a_running_source_is_not_run_twice(runtime: Runtime, server: PagesServer) -> None:
    add(runtime.engine, server, "none")
    add(runtime.engine, server, "none", name="off", enabled=False)
    source, held = claim(runtime.engine, "crm")
    assert source.secret == SECRET and sources.get(runtime.engine, "crm")["running"] is True
    with pytest.raises(Busy):
        run_now(runtime.engine, landing(runtime), "crm")
    assert claim_due(runtime.engine) is None  # held, and "off" is disabled
    with pytest.raises(sources.NotFound):
        run_now(runtime.engine, landing(runtime), "nope")
    assert run_now(runtime.engine, landing(runtime), "off").status == "ok"  # by hand: runs


def test_the_scheduler_thread_runs_due_sources(runtime: Runtime, server: PagesServer) -> None:
    add(runtime.engine, server, "link")
    scheduler = SourceScheduler(runtime.engine, landing(runtime), poll_seconds=0.05).start()
    try:
        for _ in range(200):
            if row(runtime.engine).last_status:
                break
            threading.Event().wait(0.05)
    finally:
        scheduler.close()
    assert row(runtime.engine).last_status == "ok"
    with session_scope(runtime.engine) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_bad_definitions_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    engine = runtime.engine
    good = {"name": "ok", "url": "https://api.example.com/people"}
    bad: list[dict[str, Any]] = [
        {"name": "../etc"}, {"name": ""}, {"url": "ftp://x/y"}, {"url": "https:///nohost"},
        {"url": "http://x/\r\nX: y"}, {"interval_seconds": 1}, {"interval_seconds": True},
        {"records_path": "a..b"}, {"pagination": {"type": "offset"}},
        {"pagination": {"type": "cursor"}}, {"pagination": {"max_pages": 0}},
        {"pagination": {"pages": 3}}, {"pagination": {"page_param": "a b"}},
        {"headers": {"Bad Name": "x"}}, {"headers": {"X-A": "1\r\nX-B: 2"}},
        {"secret_header": "Authorization"}, {"secret": "Bearer x"},
        {"secret_header": "Authorization", "secret": "x",
         "headers": {"authorization": "shown"}},
        {"mapping_file": str(tmp_path / "missing.yaml")},
    ]
    for change in bad:
        with pytest.raises(sources.SourceError):
            sources.create(engine, **{**good, **change})
    assert sources.list_all(engine) == []
    sources.create(engine, **good)
    with pytest.raises(sources.Conflict):
        sources.create(engine, **good)
    with pytest.raises(sources.SourceError):
        sources.update(engine, "ok", {"name": "renamed"})
    updated = sources.update(engine, "ok", {"interval_seconds": 60, "enabled": False})
    assert updated["enabled"] is False and updated["interval_seconds"] == 60
    assert sources.delete(engine, "ok")["name"] == "ok"
    with pytest.raises(sources.NotFound):
        sources.get(engine, "ok")


def test_a_long_run_renews_its_lease_and_a_stopped_run_is_due_again(
        runtime: Runtime, server: PagesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_source, "RENEW_SECONDS", 0.0)  # renew after every page
    add(runtime.engine, server, "page")
    source, held = claim(runtime.engine, "crm")
    outcome = http_source.run_claimed(runtime.engine, landing(runtime), source, held)
    assert outcome is not None and (outcome.status, outcome.pages) == ("ok", 4)
    got = row(runtime.engine)  # recorded although the lease moved on four times
    assert (got.last_status, got.lease_until) == ("ok", None)
    stop = threading.Event()
    stop.set()
    source, held = claim(runtime.engine, "crm")
    assert http_source.run_claimed(runtime.engine, landing(runtime), source, held,
                                   stop=stop) is None
    after = row(runtime.engine)
    assert after.lease_until is None and after.last_status == "ok"  # no outcome recorded
    assert aware(after.next_run_at) <= datetime.now(UTC)  # due again at once
    assert len(jobs(runtime.engine)) == 1


@pytest.mark.parametrize(("base", "target", "sent"), [
    ("http://api.example.com/p", "http://api.example.com/q?page=2", True),
    ("http://api.example.com/p", "https://api.example.com/q", True),  # upgrade, same host
    ("https://api.example.com/p", "http://api.example.com/q", False),  # downgrade
    ("http://api.example.com:8080/p", "http://api.example.com:9090/q", False),
    ("http://api.example.com:8080/p", "https://api.example.com:8443/q", False),
    ("https://api.example.com/p", "https://cdn.example.com/q", False),
    ("https://api.example.com/p", "https://api.example.com.evil.test/q", False),
])
def test_where_the_secret_may_go(base: str, target: str, sent: bool) -> None:
    source = sources.Source(1, "s", base, 60, "", dict(sources.DEFAULT_PAGINATION), {},
                            SECRET_HEADER, SECRET, None)
    fetch = http_fetch.Fetch(None, source, on_page=lambda: None,  # type: ignore[arg-type]
                             stop=None)
    assert (fetch._headers(http_fetch.httpx.URL(target)).get(SECRET_HEADER) == SECRET) is sent
