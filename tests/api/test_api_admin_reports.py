"""Admin reports over HTTP: GET /v1/admin/logs (JSON and CSV), /v1/admin/stats and
/v1/admin/users/{id}/usage, on SQLite and on PostgreSQL + Redis. Every number checked here comes
from requests the test made itself."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import Api, api_runtime, fill_people
from fastapi.testclient import TestClient

from recordbank.api.app import create_app
from recordbank.api.schemas_reports import LogsEnvelope, StatsEnvelope, UserUsageEnvelope
from recordbank.db.models import JOB_STATUSES
from recordbank.ingest.jobs import claim_file, finish_job
from recordbank.runtime import Runtime
from recordbank.store.client import Store
from recordbank.usage import admin_report
from recordbank.usage.log import UsageEntry

ROUTES = ["/v1/admin/logs", "/v1/admin/stats", "/v1/admin/users/1/usage",
          "/v1/admin/logs?format=csv"]


def admin(api: Api) -> str:
    return api.user(role="admin")[1]


def logs(api: Api, key: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get("/v1/admin/logs", key, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    LogsEnvelope.model_validate(body)
    assert body["metadata"]["returned"] == len(body["data"]) == body["metadata"]["total"]
    rows: list[dict[str, Any]] = body["data"]
    return rows


def csv_rows(api: Api, key: str, **params: Any) -> tuple[list[str], list[dict[str, str]]]:
    r = api.get("/v1/admin/logs", key, params={"format": "csv", **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.text)))
    return lines[0], [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


def test_refused_without_a_key_or_for_a_non_admin_key(api: Api) -> None:
    _, user_key = api.user(credits=10)
    for route in ROUTES:
        r = api.get(route)
        assert r.status_code == 401 and r.json()["error"]["code"] == "MISSING_API_KEY", route
        r = api.get(route, user_key)
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", route
        assert r.json()["status"] == "error"
    # a non-admin learns nothing about the inputs: bad parameters are still 403, not 422
    for bad in ("/v1/admin/logs?status=9xx", "/v1/admin/users/0/usage", "/v1/admin/stats?top=0"):
        assert api.get(bad, user_key).status_code == 403
    r = api.get("/v1/admin/logs", "rb_live_" + "x" * 40)
    assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_API_KEY"
    # the admin scope on a user's key is enough; the role alone too
    _, scoped = api.user(scopes=("admin",))
    assert api.get("/v1/admin/logs", scoped).status_code == 200
    assert api.get("/v1/admin/stats", admin(api)).status_code == 200


def test_logs_filters_each_filter(api: Api) -> None:
    fill_people(api.runtime, 300)
    key = admin(api)
    a_id, a = api.user(credits=1000)
    b_id, b = api.user(credits=1000)
    before = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(3):
        assert api.get("/v1/credits", a).status_code == 200
    assert api.get("/v1/usage", a).status_code == 200
    assert api.get("/v1/records", a, params={"country": "US", "_limit": 5}).status_code == 200
    assert api.get(f"/v1/records/{uuid.UUID(int=0)}", a).status_code == 404
    for _ in range(2):
        assert api.get("/v1/credits", b).status_code == 200
    assert api.post("/v1/query", b, json={"filters": {"salary": 1}}).status_code == 400
    assert api.get("/v1/credits", "rb_live_" + "y" * 40).status_code == 401  # no user
    after = datetime.now(UTC)  # every row above was recorded before its answer came back

    def made(**params: Any) -> list[dict[str, Any]]:
        """What the test's own requests left (the admin's reads come later)."""
        return logs(api, key, **{"until": after.isoformat(), **params})

    everything = made()
    assert len(everything) == 10
    stamps = [r["created_at"] for r in everything]
    assert stamps == sorted(stamps, reverse=True)  # newest first

    mine = made(user_id=a_id)
    assert len(mine) == 6 and {r["user_id"] for r in mine} == {a_id}
    assert {r["key_id"] for r in made(key_id=api.keys[b])} == {api.keys[b]}
    assert len(made(key_id=api.keys[b])) == 3
    assert len(made(user_id=a_id, key_id=api.keys[b])) == 0
    credits = made(path="/v1/credits")
    assert len(credits) == 6 and {r["path"] for r in credits} == {"/v1/credits"}
    assert {r["path"] for r in made(path="/v1/rec*")} == {
        "/v1/records", "/v1/records/{record_id}"}
    assert made(path="/v1/rec_rds*") == []  # '_' is not a wildcard
    assert made(path="/v1/rec%*") == []  # nor '%'
    assert made(path="/V1/*") == []  # case-sensitive on both databases
    assert len(made(path="/v1/*")) == 10
    errors = made(status="4xx")
    assert len(errors) == 3 and all(400 <= r["status"] < 500 for r in errors)
    assert [r["error_code"] for r in made(status="400")] == ["INVALID_FIELD"]
    assert [r["error_code"] for r in made(status="404")] == ["NOT_FOUND"]
    assert [r["user_id"] for r in made(status="401")] == [None]
    assert len(made(status="2XX")) == 7
    assert made(status="5xx") == []
    assert len(made(since=before.isoformat(), until=after.isoformat())) == 10
    assert logs(api, key, since=after.isoformat(), path="/v1/credits") == []
    assert made(until=before.isoformat()) == []
    assert made(until=(before - timedelta(days=1)).date().isoformat()) == []
    # the admin's own reads are logged too (after they answer)
    own = logs(api, key, path="/v1/admin/*")
    assert len(own) > 10 and {r["path"] for r in own} == {"/v1/admin/logs"}

    # paging: the same rows, sliced; metadata tells the total
    full = logs(api, key, path="/v1/credits")
    r = api.get("/v1/admin/logs", key, params={"path": "/v1/credits", "limit": 2, "offset": 1})
    body = r.json()
    assert body["metadata"] == {"total": 6, "limit": 2, "offset": 1, "returned": 2}
    assert [x["id"] for x in body["data"]] == [x["id"] for x in full[1:3]]
    r = api.get("/v1/admin/logs", key, params={"path": "/v1/credits", "offset": 6})
    assert r.json()["data"] == [] and r.json()["metadata"]["total"] == 6
    assert r.json()["metadata"]["limit"] == 100  # the default page


@pytest.mark.parametrize("query", [
    "status=9xx", "status=abc", "status=4x", "status=40", "status=", "since=yesterday",
    "since=2024-13-45", "until=2024-02-30T10:00:00", "limit=0", "limit=1001", "limit=100001",
    "limit=-5", "offset=-1", "offset=1000001", "user_id=0", "user_id=abc",
    "key_id=9223372036854775808", "path=records", "path=/v1/%00x", "format=xml",
    "since=2025-01-02&until=2025-01-01", "since=2025-01-01&until=2025-01-01",
    "format=csv&limit=100001",
])
def test_logs_bad_filters_are_422(api: Api, query: str) -> None:
    r = api.get(f"/v1/admin/logs?{query}", admin(api))
    assert r.status_code == 422, (query, r.text)
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_logs_csv_rows_and_formula_neutralization(api: Api) -> None:
    key = admin(api)
    uid, user_key = api.user(credits=10)
    assert api.get("/v1/credits", user_key, params={"note": "=cmd|' /C calc'!A0"}).status_code \
        == 200
    assert api.get("/v1/credits", user_key, headers={"X-Request-ID": "-cmd"}).status_code == 200
    assert api.get("/v1/credits", user_key, headers={"X-Request-ID": "-5"}).status_code == 200
    assert api.get("/v1/=cmd", user_key).status_code == 404  # no route: logged without a user

    header, rows = csv_rows(api, key, user_id=uid)
    assert header == ["id", "created_at", "request_id", "user_id", "key_id", "method", "path",
                      "params", "status", "error_code", "rows_returned", "credits_charged",
                      "duration_ms", "client"]
    as_json = logs(api, key, user_id=uid)
    assert len(rows) == len(as_json) == 3
    assert [r["id"] for r in rows] == [str(r["id"]) for r in as_json]  # same rows, same order
    assert [r["request_id"] for r in rows][:2] == ["-5", "'-cmd"]  # a plain number stays
    assert [r["request_id"] for r in as_json][:2] == ["-5", "-cmd"]  # JSON is not touched
    noted = rows[2]
    assert "=cmd" in noted["params"] and noted["params"].startswith("{")
    assert json.loads(noted["params"]) == {"note": "=cmd|' /C calc'!A0"}
    for r, j in zip(rows, as_json, strict=True):
        assert r["user_id"] == str(uid) and r["key_id"] == str(api.keys[user_key])
        assert r["created_at"] == j["created_at"] and r["status"] == "200"
        assert float(r["duration_ms"]) == j["duration_ms"] and r["error_code"] == ""
    _, missing = csv_rows(api, key, path="/v1/=cmd")
    assert [(r["path"], r["status"], r["user_id"], r["error_code"]) for r in missing] == [
        ("/v1/=cmd", "404", "", "NOT_FOUND")]
    # filters, limit and offset apply to the CSV too
    _, page = csv_rows(api, key, user_id=uid, limit=2, offset=1)
    assert [r["id"] for r in page] == [str(r["id"]) for r in as_json[1:3]]
    _, none = csv_rows(api, key, user_id=uid, status="5xx")
    assert none == []
    _, big = csv_rows(api, key, limit=5000)  # past the JSON page size: fine for CSV
    assert len(big) >= 4


def test_logs_csv_streams_many_rows_in_order(api: Api) -> None:
    """More rows than one keyset chunk, many sharing a timestamp: each exactly once, in the
    order of the JSON pages."""
    key = admin(api)
    usage = api.app.state.ctx.usage
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    n = 2 * admin_report.CSV_CHUNK + 321
    for i in range(n):
        usage.record(UsageEntry(request_id=f"bulk{i}", method="GET", path="/v1/bulk",
                                status=200, user_id=7, created_at=t0 + timedelta(
                                    seconds=i // 10)))
    header, rows = csv_rows(api, key, path="/v1/bulk")
    assert len(rows) == n and len({r["id"] for r in rows}) == n
    pages = []
    for offset in range(0, n, 1000):
        r = api.get("/v1/admin/logs", key, params={"path": "/v1/bulk", "limit": 1000,
                                                   "offset": offset})
        pages.extend(str(x["id"]) for x in r.json()["data"])
    assert [r["id"] for r in rows] == pages
    assert rows[0]["request_id"] == f"bulk{n - 1}" and rows[-1]["request_id"] == "bulk0"
    _, part = csv_rows(api, key, path="/v1/bulk", offset=999, limit=1500)
    assert [r["id"] for r in part] == pages[999:2499]


def test_stats_match_what_the_test_did(api: Api) -> None:
    fill_people(api.runtime, 3000)
    admin_id, key = api.user(role="admin")
    uid, user_key = api.user(credits=100)
    engine = api.runtime.engine
    claim = claim_file(engine, source="crm", path="/in/a.csv", file_name="a.csv",
                       checksum="ab" * 32, size=10, options={})
    finish_job(engine, claim.job_id, register=True, rows_read=120, rows_inserted=100,
               rows_duplicate=15, rows_quarantined=5)
    r = api.post("/v1/query", user_key, json={"limit": 100})
    assert r.status_code == 200, r.text
    spent = r.json()["metadata"]["credits_used"]
    assert spent == 2  # 1 + 100 rows x 0.01
    for _ in range(4):
        assert api.get("/v1/credits", user_key).status_code == 200
    assert api.get("/v1/usage", key).status_code == 200

    r = api.get("/v1/admin/stats", key, params={"top": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    StatsEnvelope.model_validate(body)
    data, meta = body["data"], body["metadata"]

    records = data["records"]
    assert records["total"] == 3000
    assert records["country"]["values"] == [{"value": "DE", "records": 1000},
                                            {"value": "GB", "records": 1000}]
    assert records["country"]["other"] == 1000  # US, beyond the top 2
    statuses = Counter(["active", "pending", "inactive"][n // 3 % 3] for n in range(3000))
    ranked = sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0]))  # as fill_people fills
    assert records["status"]["values"] == [{"value": v, "records": n} for v, n in ranked[:2]]
    assert records["status"]["other"] == ranked[2][1]
    assert records["source"] == {"values": [{"value": "test", "records": 3000}], "other": 0}

    assert data["ingestion"] == {
        "jobs": {**dict.fromkeys(JOB_STATUSES, 0), "succeeded": 1}, "jobs_total": 1,
        "rows_read": 120, "rows_inserted": 100, "rows_duplicate": 15, "rows_quarantined": 5}
    credits = data["credits"]
    assert credits["granted"] == 100 and credits["total_granted"] == 100
    assert credits["charged"] == spent and credits["total_spent"] == spent
    assert credits["held_open"] == 0 and credits["refunded"] == 0

    today = datetime.now(UTC).date().isoformat()
    days = data["requests_per_day"]
    assert [d["date"] for d in days] == [today]
    assert days[0]["requests"] == 6 and days[0]["errors"] == 0
    assert days[0]["credits"] == spent and days[0]["rows"] == 100

    top = data["top_users"]
    assert [(u["user_id"], u["requests"]) for u in top["by_requests"]] == [(uid, 5),
                                                                           (admin_id, 1)]
    assert top["by_credits"] == [{"user_id": uid, "email": top["by_requests"][0]["email"],
                                  "credits": spent}]
    assert "@example.com" in str(top["by_credits"][0]["email"])

    latency = {(x["method"], x["path"]): x for x in data["latency"]}
    assert set(latency) == {("POST", "/v1/query"), ("GET", "/v1/credits"),
                            ("GET", "/v1/usage")}
    assert latency[("GET", "/v1/credits")]["requests"] == 4
    for x in latency.values():
        assert 0 < x["p50_ms"] <= x["p95_ms"] <= x["max_ms"]
    assert meta["latency_sample"] == 6 and meta["top"] == 2
    assert meta["until"] is None
    assert datetime.fromisoformat(meta["since"]) <= datetime.now(UTC) - timedelta(days=29)

    # a window before everything: no requests, no top users, no latency; all-time totals stay
    r = api.get("/v1/admin/stats", key, params={"since": "2020-01-01", "until": "2020-02-01"})
    data = r.json()["data"]
    assert data["requests_per_day"] == [] and data["latency"] == []
    assert data["top_users"] == {"by_requests": [], "by_credits": []}
    assert data["credits"]["charged"] == spent and data["records"]["total"] == 3000
    assert r.json()["metadata"]["latency_sample"] == 0
    # only an end: the 30 days before it
    r = api.get("/v1/admin/stats", key, params={"until": "2020-02-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["since"] == "2020-01-02T00:00:00+00:00"
    assert r.json()["data"]["requests_per_day"] == []


@pytest.mark.parametrize("query", ["top=0", "top=101", "since=soon", "until=2025-02-31",
                                   "since=2025-03-01&until=2025-02-01"])
def test_stats_bad_parameters_are_422(api: Api, query: str) -> None:
    r = api.get(f"/v1/admin/stats?{query}", admin(api))
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", r.text


def test_stats_store_down_is_503(runtime: Runtime, database_url: str) -> None:
    rt = api_runtime(runtime, database_url)
    down = Store("http://127.0.0.1:9", lazy=True)  # nothing listens on the discard port
    broken = Runtime(settings=rt.settings, store=down, engine=rt.engine)
    app = create_app(runtime=broken)
    with TestClient(app) as client:
        api = Api(client, broken, app)
        r = api.get("/v1/admin/stats", admin(api))
        assert r.status_code == 503 and r.json()["error"]["code"] == "STORE_UNAVAILABLE"
        assert api.get("/v1/admin/logs", admin(api)).status_code == 200  # no store needed


def test_user_usage(api: Api) -> None:
    fill_people(api.runtime, 300)
    key = admin(api)
    uid, user_key = api.user(credits=100)
    _, other = api.user(credits=100)
    for _ in range(2):
        assert api.get("/v1/credits", user_key).status_code == 200
    r = api.post("/v1/query", user_key, json={"limit": 10})
    spent = r.json()["metadata"]["credits_used"]
    assert api.post("/v1/query", user_key, json={"fields": ["password"]}).status_code == 400
    assert api.get("/v1/credits", other).status_code == 200

    r = api.get(f"/v1/admin/users/{uid}/usage", key)
    assert r.status_code == 200, r.text
    body = r.json()
    UserUsageEnvelope.model_validate(body)
    data = body["data"]
    assert data["user"]["id"] == uid and data["user"]["role"] == "user"
    assert data["user"]["status"] == "active" and "@example.com" in data["user"]["email"]
    today = datetime.now(UTC).date().isoformat()
    totals = {t["endpoint"]: t for t in data["totals"]}
    assert totals["/v1/credits"] == {"date": today, "endpoint": "/v1/credits", "requests": 2,
                                     "rows": 0, "credits": 0, "errors": 0}
    assert totals["/v1/query"] == {"date": today, "endpoint": "/v1/query", "requests": 2,
                                   "rows": 10, "credits": spent, "errors": 1}
    assert set(totals) == {"/v1/credits", "/v1/query"}
    requests = data["requests"]
    assert [x["path"] for x in requests] == ["/v1/query", "/v1/query", "/v1/credits",
                                             "/v1/credits"]
    assert requests[0]["status"] == 400 and requests[0]["error_code"] == "INVALID_FIELD"
    assert body["metadata"] == {"total": 4, "limit": 100, "offset": 0, "returned": 4}

    page = api.get(f"/v1/admin/users/{uid}/usage", key, params={"limit": 1, "offset": 1}).json()
    assert [x["id"] for x in page["data"]["requests"]] == [requests[1]["id"]]
    assert page["metadata"]["total"] == 4
    only = api.get(f"/v1/admin/users/{uid}/usage", key,
                   params={"endpoint": "/v1/credits"}).json()
    assert [x["path"] for x in only["data"]["requests"]] == ["/v1/credits"] * 2
    later = api.get(f"/v1/admin/users/{uid}/usage", key,
                    params={"since": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()})
    assert later.json()["data"]["totals"] == [] and later.json()["data"]["requests"] == []

    r = api.get("/v1/admin/users/987654321/usage", key)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    for bad in ("/v1/admin/users/0/usage", "/v1/admin/users/abc/usage",
                "/v1/admin/users/9223372036854775808/usage",
                f"/v1/admin/users/{uid}/usage?limit=1001",
                f"/v1/admin/users/{uid}/usage?since=2025-05-05&until=2025-05-01",
                f"/v1/admin/users/{uid}/usage?endpoint=credits"):
        r = api.get(bad, key)
        assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR", bad


def test_openapi_documents_every_route(api: Api) -> None:
    spec = api.get("/openapi.json").json()
    want = {"/v1/admin/logs": {"200", "401", "403", "422", "429"},
            "/v1/admin/stats": {"200", "401", "403", "422", "429", "503", "504"},
            "/v1/admin/users/{user_id}/usage": {"200", "401", "403", "404", "422", "429"}}
    for path, statuses in want.items():
        op = spec["paths"][path]["get"]
        assert op["tags"] == ["admin"]
        assert set(op["responses"]) == statuses, path
        assert "$ref" in op["responses"]["200"]["content"]["application/json"]["schema"]
        assert op["responses"]["403"]["content"]["application/json"]["schema"]["$ref"] \
            .endswith("/ErrorEnvelope")
    assert "text/csv" in spec["paths"]["/v1/admin/logs"]["get"]["responses"]["200"]["content"]
    params = {p["name"] for p in spec["paths"]["/v1/admin/logs"]["get"]["parameters"]}
    assert params >= {"user_id", "key_id", "path", "status", "since", "until", "limit",
                      "offset", "format"}
