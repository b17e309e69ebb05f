"""schemathesis with an admin key over every admin route (accounts, audit, reports, HTTP
sources, webhooks) and the ingest job routes, on seeded data, with valid and with schema-breaking
requests: no 5xx, no answer outside the documented schema or status codes.

Each operation fuzzes with a fresh admin key (a revoked or disabled fuzzing key would turn the
rest into documented 401s). Ordering keeps it cheap and local: "run now" goes first, while the
only source is the seeded one on a local JSON server (later sources get random URLs, which a
run would try to fetch); deletions go last. The job event stream is left out: on a job that
never ends (no workers here) it streams until the client leaves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apikit import Api, api_runtime
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_http import SECRET, SECRET_HEADER, person, serving
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from recordbank.api.app import create_app
from recordbank.ingest import http_sources_model as sources
from recordbank.ingest import queue
from recordbank.ingest.sources import file_checksum
from recordbank.notify import webhooks
from recordbank.runtime import Runtime

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
PREFIXES = ("/v1/admin/", "/v1/ingest/")
LEFT_OUT = {("GET", "/v1/ingest/jobs/{job_id}/events")}
EXAMPLES = int(os.environ.get("RECORDBANK_FUZZ_EXAMPLES", "30"))  # per operation and mode
FIXUPS: dict[str, st.SearchStrategy[Any]] = {
    # *.invalid never resolves, and no run fetches these (see the module docstring)
    "url": st.from_regex(r"\Ahttps?://[a-z][a-z0-9-]{0,20}\.invalid(:[1-9][0-9]{1,4})?"
                         r"(/[A-Za-z0-9_.~-]{0,20}){0,3}(\?[a-z]{1,8}=[A-Za-z0-9]{0,10})?\Z"),
    "email": st.emails().filter(lambda e: len(e) <= 320),
    "mapping_file": st.none(),
}
UPLOAD_NAMES = st.sampled_from(["people.csv", "people.tsv", "people.json", "people.jsonl",
                                "people.xml", "people.xlsx", "people.sql", "people.csv.gz"])


@pytest.fixture
def quiet_api(runtime: Runtime, database_url: str) -> Iterator[Api]:
    """No scheduler thread: only the fuzzer runs sources."""
    rt = api_runtime(runtime, database_url, http_sources_enabled=False)
    with TestClient(create_app(runtime=rt)) as client:
        yield Api(client, rt, client.app)  # type: ignore[arg-type]


def _seed(api: Api, source_url: str, folder: Path) -> None:
    """Something for every id the fuzzer is likely to try: users, keys, credits, a source, a
    webhook, queued and cancelled jobs. Written directly, not over HTTP: schemathesis runs the
    app on its own event loop, and the Redis limiter's connections must be made on that one."""
    engine = api.runtime.engine
    api.user(credits=100)
    sources.create(engine, name="seed", url=source_url, records_path="data.items",
                   secret_header=SECRET_HEADER, secret=SECRET, interval_seconds=600)
    webhooks.create_webhook(engine, "http://127.0.0.1:9/hook", ["job.completed"])
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(3):
        path = folder / f"people{i}.csv"
        path.write_text(f"email,name\np{i}@example.com,P {i}\n")
        checksum, size = file_checksum(path)
        jobs.append(queue.enqueue(engine, path=str(path), file_name=path.name, source="seed",
                                  checksum=checksum, size=size, options={},
                                  origin="upload").job_id)
    assert queue.request_cancel(engine, jobs[-1]) == "cancelled"


def _valid_half_the_time(case: Any, data: st.DataObject) -> None:
    """Random text is almost never a URL or an email, so fields that must be one get a valid
    value in about half the cases: requests then get past the checks into the code behind."""
    if isinstance(case.body, dict):
        for field, strategy in FIXUPS.items():
            if field in case.body and data.draw(st.booleans()):
                case.body[field] = data.draw(strategy)
    if case.path == "/v1/ingest/uploads" and data.draw(st.booleans()):
        case.query = {**(case.query or {}), "filename": data.draw(UPLOAD_NAMES)}


def _fuzz(operation: Any, key: str, mode: GenerationMode) -> None:
    """Valid requests (positive) or requests that break the schema (negative)."""
    @given(case=operation.as_strategy(mode), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def conforms(case: Any, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            _valid_half_the_time(case, data)
        case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)

    conforms()


def _order(op: Any) -> tuple[int, str, str]:
    first = op.path.endswith("/run")
    return (0 if first else 2 if op.method.upper() == "DELETE" else 1, op.path, op.method)


def test_admin_and_ingest_routes_conform_to_their_openapi_document(
        quiet_api: Api, free_port: int, tmp_path: Path) -> None:
    import schemathesis

    api = quiet_api
    with serving(free_port, [person(i) for i in range(1, 6)]) as server:
        _seed(api, server.url("/none"), tmp_path / "files")
        schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
        operations = [r.ok() for r in schema.get_all_operations()]
        mine = sorted((op for op in operations if op.path.startswith(PREFIXES)
                       and (op.method.upper(), op.path) not in LEFT_OUT), key=_order)
        paths = {op.path for op in mine}
        assert {"/v1/admin/sources", "/v1/admin/sources/{source_id}/run",
                "/v1/admin/webhooks", "/v1/admin/webhooks/{webhook_id}", "/v1/admin/users",
                "/v1/admin/keys/{key_id}", "/v1/admin/audit", "/v1/ingest/jobs/{job_id}",
                "/v1/ingest/uploads"} <= paths, paths
        for operation in mine:
            key = api.user(role="admin")[1]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, key, mode)
        assert server.hits("/none") >= 1  # the seeded source did run


def test_inputs_the_fuzzer_found_are_refused_not_crashed(quiet_api: Api) -> None:
    """Each of these was a 500 (or an undocumented 400) before: times whose UTC equivalent is
    outside the calendar, a body that is not UTF-8, NUL characters PostgreSQL cannot store,
    lone surrogates, an encoding name with a NUL."""
    api = quiet_api
    me, key = api.user(role="admin")
    first, last = "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"
    for path in ("/v1/admin/audit", "/v1/admin/logs", "/v1/admin/stats", "/v1/ingest/jobs",
                 f"/v1/admin/users/{me}/usage", "/v1/usage"):
        for params in ({"since": first}, {"until": last}, {"since": first, "until": last}):
            r = api.get(path, key, params=params)
            assert r.status_code == 200, (path, params, r.text)

    def status(method: str, path: str, **kw: Any) -> tuple[int, str]:
        r = api.client.request(method, path, headers={"X-API-Key": key, **kw.pop("headers", {})},
                               **kw)
        return r.status_code, r.json().get("error", {}).get("code", "")

    credits, keys = f"/v1/admin/users/{me}/credits", f"/v1/admin/users/{me}/keys"
    assert status("POST", credits, json={"amount": 5, "reason": "x", "expires_at": first}) == \
        (422, "VALIDATION_ERROR")
    assert status("POST", credits, json={"amount": 5, "reason": "x", "expires_at": last}) == \
        (201, "")
    assert status("POST", keys, json={"expires_at": first}) == (422, "VALIDATION_ERROR")
    assert status("POST", keys, json={"expires_at": last}) == (201, "")
    not_utf8 = {"content": b'{"email": "\xff\xfe"}',
                "headers": {"Content-Type": "application/json"}}
    for path in ("/v1/admin/users", "/v1/admin/sources", "/v1/admin/webhooks", credits):
        assert status("POST", path, **not_utf8) == (422, "VALIDATION_ERROR"), path
    source = {"name": "s", "url": "http://a.invalid/x"}
    surrogate = b'{"name": "s", "url": "http://a.invalid/x", "headers": {"X-A": "\\udcff"}}'
    for bad in ({"records_path": "a\x00b"}, {"mapping_file": "/tmp/a\x00b"},
                {"pagination": {"type": "cursor", "cursor_path": "next\x00"}}):
        assert status("POST", "/v1/admin/sources", json={**source, **bad}) == \
            (422, "VALIDATION_ERROR"), bad
    assert status("POST", "/v1/admin/sources", content=surrogate,
                  headers={"Content-Type": "application/json"}) == (422, "VALIDATION_ERROR")
    for bad in ({"description": "a\x00b"}, {"url": "http://a.invalid/\x00"}):
        assert status("POST", "/v1/admin/webhooks", json={
            "url": "http://a.invalid/hook", "events": ["job.failed"], **bad}) == \
            (422, "VALIDATION_ERROR"), bad
    csv = {"content": b"email\na@b.co\n", "headers": {"Content-Type": "text/csv"}}
    for query in ("encoding=utf-8%00", "source=a%00b", "table=a%00b"):
        assert status("POST", f"/v1/ingest/uploads?filename=x.csv&{query}", **csv) == \
            (422, "VALIDATION_ERROR"), query
    for query in ("source=a%00b", "origin=%00"):
        assert status("GET", f"/v1/ingest/jobs?{query}") == (422, "VALIDATION_ERROR"), query
    # the refusals left nothing behind; the two accepted changes are audited
    assert api.get("/v1/admin/sources", key).json()["data"] == []
    assert api.get("/v1/admin/webhooks", key).json()["data"] == []
    assert api.get("/v1/ingest/jobs", key).json()["data"] == []
    audited = api.get("/v1/admin/audit", key).json()["data"]
    assert sorted(x["action"] for x in audited) == ["credits.grant", "key.issue"]
