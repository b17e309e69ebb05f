"""Admin API for scheduled HTTP sources, through HTTP on a real DB against a real local JSON
server: create, list, read, change, delete, run now; admin keys only; the secret never comes
back; `recordbank serve` (the app's lifespan) runs due sources by itself."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from apikit import Api, api_runtime
from fastapi.testclient import TestClient
from local_http import SECRET, SECRET_HEADER, PagesServer, person, serving
from sqlalchemy import select

from recordbank.api.app import create_app
from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest.http_sources_model import HttpSource
from recordbank.ingest.worker import Worker
from recordbank.runtime import Runtime

TOKEN = SECRET.split()[1]
BASE = "/v1/admin/sources"


@pytest.fixture
def quiet_api(runtime: Runtime, database_url: str) -> Iterator[Api]:
    """The API without its scheduler thread, so that only the test runs sources."""
    rt = api_runtime(runtime, database_url, http_sources_enabled=False)
    with TestClient(create_app(runtime=rt)) as client:
        yield Api(client, rt, client.app)  # type: ignore[arg-type]


@pytest.fixture
def server(free_port: int) -> Iterator[PagesServer]:
    with serving(free_port, [person(i) for i in range(1, 26)]) as srv:
        yield srv


def call(api: Api, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    headers = kw.pop("headers", {})
    if key:
        headers["X-API-Key"] = key
    r = api.client.request(method, path, headers=headers, **kw)
    assert TOKEN not in r.text, (method, path)
    return r


def code(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def body(server: PagesServer, **kw: Any) -> dict[str, Any]:
    return {"name": "crm", "url": server.url("/cursor"), "records_path": "items",
            "pagination": {"type": "cursor", "cursor_path": "meta.next_cursor"},
            "headers": {"Accept-Language": "en"}, "secret_header": SECRET_HEADER,
            "secret": SECRET, "interval_seconds": 600, **kw}


def test_create_run_change_and_delete(quiet_api: Api, server: PagesServer) -> None:
    api = quiet_api
    _, key = api.user(role="admin")
    made = call(api, "POST", BASE, key, json=body(server))
    assert made.status_code == 201, made.text
    src = made.json()["data"]
    assert (src["name"], src["secret"], src["secret_header"], src["enabled"]) == \
        ("crm", "set", SECRET_HEADER, True)
    assert src["pagination"]["cursor_path"] == "meta.next_cursor" and src["failures"] == 0
    assert src["last_status"] is None and src["next_run_at"]
    sid = src["id"]
    ran = call(api, "POST", f"{BASE}/{sid}/run", key)
    assert ran.status_code == 200, ran.text
    outcome = ran.json()["data"]
    assert (outcome["status"], outcome["records"], outcome["pages"], outcome["job_kind"]) == \
        ("ok", 25, 3, "queued")
    assert all(h.get(SECRET_HEADER) == SECRET for _, h in server.seen)
    job = call(api, "GET", f"/v1/ingest/jobs/{outcome['job_id']}", key).json()["data"]
    assert job["status"] == "queued"
    assert Worker(api.runtime, lease_seconds=10).run_once() == outcome["job_id"]
    assert int(api.runtime.store.scalar("SELECT count() FROM records")) == 25
    listed = call(api, "GET", BASE, key).json()
    assert listed["metadata"] == {"total": 1}
    [shown] = listed["data"]
    assert (shown["last_status"], shown["last_records"], shown["last_job_id"]) == \
        ("ok", 25, outcome["job_id"])
    assert shown["last_run_at"] and shown["running"] is False

    changed = call(api, "PATCH", f"{BASE}/{sid}", key,
                   json={"enabled": False, "interval_seconds": 60,
                         "headers": {"X-Team": "data"}})
    assert changed.status_code == 200, changed.text
    new = changed.json()["data"]
    assert (new["enabled"], new["interval_seconds"], new["headers"], new["secret"]) == \
        (False, 60, {"X-Team": "data"}, "set")
    cleared = call(api, "PATCH", f"{BASE}/{sid}", key,
                   json={"secret_header": None, "secret": None})
    assert cleared.json()["data"]["secret"] == "unset"
    refused = call(api, "POST", f"{BASE}/{sid}/run", key).json()["data"]
    assert refused["status"] == "failed" and "HTTP 401" in refused["error"]
    assert call(api, "GET", f"{BASE}/{sid}", key).json()["data"]["failures"] == 1
    gone = call(api, "DELETE", f"{BASE}/{sid}", key)
    assert gone.status_code == 200 and gone.json()["data"]["name"] == "crm"
    assert code(call(api, "GET", f"{BASE}/{sid}", key)) == (404, "NOT_FOUND")
    assert code(call(api, "POST", f"{BASE}/{sid}/run", key)) == (404, "NOT_FOUND")


def test_the_secret_stays_in_the_database_only(quiet_api: Api, server: PagesServer) -> None:
    api = quiet_api
    _, key = api.user(role="admin")
    sid = call(api, "POST", BASE, key, json=body(server, url=server.url("/fail/500"))
               ).json()["data"]["id"]
    failed = call(api, "POST", f"{BASE}/{sid}/run", key).json()["data"]
    assert failed["status"] == "failed" and "HTTP 500" in failed["error"]
    call(api, "GET", BASE, key)
    call(api, "GET", f"{BASE}/{sid}", key)
    with session_scope(api.runtime.engine) as s:
        stored = s.scalars(select(HttpSource)).one()
        assert stored.secret == SECRET  # kept to be sent ...
        assert TOKEN not in (stored.last_error or "") and TOKEN not in json.dumps(
            stored.headers)  # ... and nowhere else
    assert code(call(api, "POST", BASE, key, json=body(server))) == (409, "CONFLICT")


def test_non_admin_keys_are_refused(quiet_api: Api, server: PagesServer) -> None:
    api = quiet_api
    _, admin_key = api.user(role="admin")
    sid = call(api, "POST", BASE, admin_key, json=body(server)).json()["data"]["id"]
    _, user_key = api.user(scopes=("query", "export", "ingest"))
    for method, path, kw in (("GET", BASE, {}), ("POST", BASE, {"json": body(server)}),
                             ("GET", f"{BASE}/{sid}", {}),
                             ("PATCH", f"{BASE}/{sid}", {"json": {"enabled": False}}),
                             ("DELETE", f"{BASE}/{sid}", {}),
                             ("POST", f"{BASE}/{sid}/run", {})):
        assert code(call(api, method, path, user_key, **kw)) == (403, "FORBIDDEN"), path
        assert code(call(api, method, path, None, **kw))[0] == 401, path
    assert server.seen == []  # nothing ran
    src = call(api, "GET", f"{BASE}/{sid}", admin_key).json()["data"]
    assert src["enabled"] is True and src["last_status"] is None


def test_bad_requests_are_refused(quiet_api: Api, server: PagesServer, tmp_path: Any) -> None:
    api = quiet_api
    _, key = api.user(role="admin")
    bad: list[dict[str, Any]] = [
        {"name": "no spaces"}, {"url": "file:///etc/passwd"}, {"url": "http://"},
        {"interval_seconds": 5}, {"interval_seconds": "60"}, {"records_path": "a..b"},
        {"pagination": {"type": "offset"}}, {"pagination": {"type": "cursor"}},
        {"pagination": {"max_pages": 0}}, {"pagination": {"extra": 1}},
        {"headers": {"Bad Header": "x"}}, {"headers": {"X-A": "a\nb"}},
        {"secret": None}, {"secret_header": "Bad Header"},
        {"mapping_file": str(tmp_path / "nope.yaml")}, {"unknown": 1},
    ]
    for change in bad:
        r = call(api, "POST", BASE, key, json=body(server, **change))
        assert code(r) == (422, "VALIDATION_ERROR"), (change, r.text)
    assert call(api, "GET", BASE, key).json()["data"] == []
    sid = call(api, "POST", BASE, key, json=body(server)).json()["data"]["id"]
    for change in ({"name": "other"}, {"url": None}, {"enabled": None}, {"secret": None},
                   {"interval_seconds": 1}):
        r = call(api, "PATCH", f"{BASE}/{sid}", key, json=change)
        assert code(r) == (422, "VALIDATION_ERROR"), (change, r.text)
    assert code(call(api, "GET", f"{BASE}/0", key)) == (422, "VALIDATION_ERROR")
    assert code(call(api, "PATCH", f"{BASE}/999", key, json={"enabled": True})) == \
        (404, "NOT_FOUND")


def test_serve_runs_due_sources_by_itself(api: Api, server: PagesServer) -> None:
    _, key = api.user(role="admin")
    sid = call(api, "POST", BASE, key, json=body(server)).json()["data"]["id"]
    deadline = time.monotonic() + 30
    src: dict[str, Any] = {}
    while time.monotonic() < deadline:
        src = call(api, "GET", f"{BASE}/{sid}", key).json()["data"]
        if src["last_status"]:
            break
        time.sleep(0.1)
    assert (src["last_status"], src["last_records"]) == ("ok", 25)
    with session_scope(api.runtime.engine) as s:
        [job] = s.scalars(select(Job)).all()
        assert (job.origin, job.source) == ("http", "crm")


def test_changes_and_runs_are_audited_without_secrets(quiet_api: Api,
                                                      server: PagesServer) -> None:
    api = quiet_api
    me, key = api.user(role="admin")
    hidden = ["tenant-value-1", "tenant-value-2", "QTOKEN123", TOKEN, "n3w-T0ken"]
    made = call(api, "POST", BASE, key, json=body(server, headers={"X-Tenant": hidden[0]}),
                headers={"X-Request-ID": "src-create"})
    sid = made.json()["data"]["id"]
    steps: list[tuple[dict[str, Any], int]] = [
        ({"headers": {"X-Tenant": hidden[1], "X-Team": "data"}}, 200),
        ({"url": server.url(f"/cursor?api_key={hidden[2]}")}, 200),
        ({"url": server.url("/cursor")}, 200),
        ({"enabled": False}, 200),
        ({"enabled": False}, 200),  # no change: no row
        ({"enabled": True, "interval_seconds": 900}, 200),
        ({"secret": f"Bearer {hidden[4]}", "secret_header": SECRET_HEADER}, 200),
        ({"interval_seconds": 1}, 422),  # refused: no row
        ({"secret": None}, 422),
    ]
    for change, status in steps:
        r = call(api, "PATCH", f"{BASE}/{sid}", key, json=change)
        assert r.status_code == status, (change, r.text)
    assert code(call(api, "PATCH", f"{BASE}/{sid + 1}", key, json={"enabled": False})) == \
        (404, "NOT_FOUND")
    ran = call(api, "POST", f"{BASE}/{sid}/run", key).json()["data"]
    assert ran["status"] == "failed"  # the new secret is not the one the server wants
    assert call(api, "DELETE", f"{BASE}/{sid}", key).status_code == 200
    assert code(call(api, "DELETE", f"{BASE}/{sid}", key)) == (404, "NOT_FOUND")
    assert code(call(api, "POST", f"{BASE}/{sid}/run", key)) == (404, "NOT_FOUND")

    r = call(api, "GET", "/v1/admin/audit", key, params={"target": f"source:{sid}"})
    assert r.status_code == 200, r.text
    rows = list(reversed(r.json()["data"]))
    assert [x["action"] for x in rows] == [
        "source.create", "source.update", "source.update", "source.update", "source.disable",
        "source.enable", "source.update", "source.run", "source.delete"]
    assert all((x["actor_user_id"], x["target_type"], x["target_id"]) == (me, "source", sid)
               for x in rows)
    create, headers, to_query, back, disable, enable, secret, run, delete = \
        [x["details"] for x in rows]
    assert rows[0]["request_id"] == "src-create"
    assert (create["name"], create["headers"], create["secret_header"], create["secret"]) == \
        ("crm", ["X-Tenant"], SECRET_HEADER, "set")
    assert headers["changes"] == {"headers": {"added": ["X-Team"], "removed": [],
                                              "changed": ["X-Tenant"]}}
    assert to_query["changes"]["url"]["to"].endswith("/cursor?api_key=[redacted]")
    assert back["changes"]["url"]["to"] == server.url("/cursor")
    assert disable["changes"] == {"enabled": {"from": True, "to": False}}
    assert enable["changes"] == {"enabled": {"from": False, "to": True},
                                 "interval_seconds": {"from": 600, "to": 900}}
    assert secret["changes"] == {"secret": {"from": "set", "to": "replaced"}}
    assert (run["status"], run["records"], run["source"]) == ("failed", 0, "crm")
    assert delete["name"] == "crm" and delete["url"] == server.url("/cursor")
    for value in hidden:
        assert value not in r.text, value
    assert call(api, "GET", "/v1/admin/audit", key,
                params={"action": "source.disable"}).json()["metadata"]["total"] == 1
    assert call(api, "GET", "/v1/admin/audit", key,
                params={"target": "source"}).json()["metadata"]["total"] == len(rows)
