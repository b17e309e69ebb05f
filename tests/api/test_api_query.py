"""Contract of POST /v1/query, GET /v1/records and GET /v1/records/{id}: envelope, metadata,
exact charges, and every error code they can answer with."""

from __future__ import annotations

import math
import uuid

from apikit import Api, fill_people

CANONICAL = {
    "filters": {"country": "US", "created_date": {"gte": "2024-01-01", "lte": "2024-12-31"},
                "status": ["active", "pending"]},
    "fields": ["email", "name", "created_date"],
    "sort": "-created_date", "limit": 1000,
}


def expected_cost(rows: int, query_time_ms: float) -> int:
    """The documented default price: 1 + rows/100 + 1 per started second beyond the first."""
    seconds = max(0, math.ceil(query_time_ms / 1000) - 1)
    return math.ceil(1 + rows / 100 + seconds)


def canonical_expected(api: Api) -> list[tuple]:
    return api.runtime.store.rows(
        "SELECT email, name, toString(created_date) FROM records WHERE country = 'US' "
        "AND created_date BETWEEN '2024-01-01' AND '2024-12-31' "
        "AND status IN ('active', 'pending') ORDER BY created_date DESC, id DESC")


def test_query_returns_rows_metadata_and_charges_exactly(api: Api) -> None:
    fill_people(api.runtime)
    user, key = api.user(credits=500)
    r = api.post("/v1/query", key, json=CANONICAL)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    meta = body["metadata"]
    expected = canonical_expected(api)
    assert [(x["email"], x["name"], x["created_date"]) for x in body["data"]] == expected[:1000]
    assert set(body["data"][0]) == {"email", "name", "created_date"}
    assert meta["total_records"] == len(expected) and not meta["total_is_approximate"]
    assert meta["returned"] == len(body["data"]) and meta["limit"] == 1000
    assert meta["page"] == 1 and meta["offset"] == 0
    cost = expected_cost(meta["returned"], meta["query_time_ms"])
    assert meta["credits_used"] == cost == int(r.headers["X-Credits-Charged"])
    assert meta["credits_remaining"] == 500 - cost == int(r.headers["X-Credits-Remaining"])
    assert api.balance(user) == 500 - cost
    for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Request-ID"):
        assert h in r.headers


def test_get_records_is_the_same_query_in_the_query_string(api: Api) -> None:
    fill_people(api.runtime)
    _, key = api.user(credits=500)
    post = api.post("/v1/query", key, json={**CANONICAL, "limit": 50}).json()
    get = api.get("/v1/records?country=US&created_date__gte=2024-01-01"
                  "&created_date__lte=2024-12-31&status__in=active,pending"
                  "&_fields=email,name,created_date&_sort=-created_date&_limit=50", key).json()
    assert get["data"] == post["data"]
    assert get["metadata"]["total_records"] == post["metadata"]["total_records"]


def test_cursor_walks_every_row_once_and_charges_each_page(api: Api) -> None:
    fill_people(api.runtime, 600)
    user, key = api.user(credits=1000)
    seen: list[str] = []
    cursor = None
    spent = 0
    while True:
        body = {"filters": {"country": ["US", "GB"]}, "fields": ["id"], "limit": 97,
                **({"cursor": cursor} if cursor else {})}
        r = api.post("/v1/query", key, json=body)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [row["id"] for row in page["data"]]
        spent += page["metadata"]["credits_used"]
        cursor = page["metadata"]["next_cursor"]
        if cursor is None:
            break
        assert page["metadata"]["page"] is None or page["metadata"]["offset"] == 0
    total = api.runtime.store.scalar("SELECT count() FROM records WHERE country IN ('US','GB')")
    assert len(seen) == len(set(seen)) == total
    assert api.balance(user) == 1000 - spent


def test_cursor_from_another_query_or_tampered_is_refused_free(api: Api) -> None:
    fill_people(api.runtime, 300)
    user, key = api.user(credits=100)
    first = api.post("/v1/query", key, json={"filters": {"country": "US"}, "limit": 5}).json()
    cursor = first["metadata"]["next_cursor"]
    before = api.balance(user)
    other = api.post("/v1/query", key, json={"filters": {"country": "GB"}, "limit": 5,
                                             "cursor": cursor})
    assert other.status_code == 400 and other.json()["error"]["code"] == "INVALID_QUERY"
    forged = cursor[:-4] + ("AAAA" if not cursor.endswith("AAAA") else "BBBB")
    bad = api.post("/v1/query", key, json={"filters": {"country": "US"}, "limit": 5,
                                           "cursor": forged})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_QUERY"
    assert api.balance(user) == before


def test_dry_run_prices_without_charging(api: Api) -> None:
    user, key = api.user(credits=100)
    r = api.post("/v1/query?dry_run=true", key, json={"limit": 1000})
    assert r.status_code == 200, r.text
    meta = r.json()["metadata"]
    # 1 + 1000/100 + (10 s time cap - 1 free second) x 1
    assert meta == {"dry_run": True, "max_credits": 20, "credits_remaining": 100}
    g = api.get("/v1/records?_limit=100&_dry_run=true", key).json()["metadata"]
    assert g["max_credits"] == 1 + 1 + 9
    assert api.balance(user) == 100


def test_insufficient_credits_runs_nothing(api: Api) -> None:
    user, key = api.user(credits=10)
    r = api.post("/v1/query", key, json={"limit": 1000})
    assert r.status_code == 402
    err = r.json()["error"]
    assert err["code"] == "INSUFFICIENT_CREDITS"
    assert err["message"] == "Required: 20, Available: 10"
    assert api.balance(user) == 10
    with_nothing = api.user(credits=0)[1]
    assert api.post("/v1/query", with_nothing, json={"limit": 1}).status_code == 402


def test_invalid_field_lists_valid_fields_and_costs_nothing(api: Api) -> None:
    user, key = api.user(credits=100)
    for r in (api.post("/v1/query", key, json={"filters": {"salary": 5}}),
              api.post("/v1/query", key, json={"fields": ["email", "password"]}),
              api.post("/v1/query", key, json={"sort": "-salary"}),
              api.get("/v1/records?salary__gt=5", key)):
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "INVALID_FIELD"
        assert "email" in err["message"] and "country" in err["message"]
    assert api.balance(user) == 100


def test_invalid_query_and_validation_errors(api: Api) -> None:
    user, key = api.user(credits=100)
    cases = [
        (api.post("/v1/query", key, json={"filters": {"created_date": {"gte": "soon"}}}), 400,
         "INVALID_QUERY"),
        (api.post("/v1/query", key, json={"filters": {"country": {"between": 1}}}), None, None),
        (api.get("/v1/records?_limit=0", key), 400, "INVALID_QUERY"),
        (api.get("/v1/records?_bogus=1", key), 400, "INVALID_QUERY"),
        (api.post("/v1/query", key, json={"limit": 5000}), 422, "VALIDATION_ERROR"),
        (api.post("/v1/query", key, json={"offset": 10**6}), 400, "INVALID_QUERY"),
        (api.post("/v1/query", key, content=b"{not json", headers={
            "content-type": "application/json"}), 422, "VALIDATION_ERROR"),
        (api.post("/v1/query", key, json={"unknown": 1}), 422, "VALIDATION_ERROR"),
        (api.get("/v1/records/not-a-uuid", key), 400, "INVALID_QUERY"),
    ]
    for r, status, code in cases:
        assert r.status_code in ((400, 422) if status is None else (status,)), r.text
        body = r.json()
        assert body["status"] == "error" and body["error"]["message"]
        if code:
            assert body["error"]["code"] == code
    assert api.balance(user) == 100


def test_record_by_id_and_not_found_is_free(api: Api) -> None:
    fill_people(api.runtime, 50)
    user, key = api.user(credits=100)
    rid, email = api.runtime.store.rows("SELECT toString(id), email FROM records LIMIT 1")[0]
    r = api.get(f"/v1/records/{rid}", key)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["email"] == email and r.json()["data"]["id"] == rid
    assert r.json()["metadata"]["credits_used"] == 2  # ceil(1 + 1/100)
    assert api.balance(user) == 98
    some = api.get(f"/v1/records/{rid}?_fields=email", key).json()["data"]
    assert some == {"email": email}
    missing = api.get(f"/v1/records/{uuid.uuid4()}", key)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert api.balance(user) == 96


def test_idempotency_key_replays_without_second_charge(api: Api) -> None:
    fill_people(api.runtime, 200)
    user, key = api.user(credits=100)
    headers = {"Idempotency-Key": "req-1"}
    first = api.post("/v1/query", key, json={"limit": 20}, headers=dict(headers))
    assert first.status_code == 200
    after_first = api.balance(user)
    again = api.post("/v1/query", key, json={"limit": 20}, headers=dict(headers))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.balance(user) == after_first
    other = api.post("/v1/query", key, json={"limit": 21}, headers=dict(headers))
    assert other.status_code == 409 and other.json()["error"]["code"] == "CONFLICT"
    # a failed request frees its key: topping up and retrying works
    poor, poor_key = api.user(credits=1)
    h = {"Idempotency-Key": "retry-me"}
    assert api.post("/v1/query", poor_key, json={"limit": 5}, headers=dict(h)).status_code == 402
    from recordbank.billing import ledger
    ledger.grant(api.runtime.engine, poor, 50, reason="top-up")
    assert api.post("/v1/query", poor_key, json={"limit": 5}, headers=dict(h)).status_code == 200


def test_body_over_the_limit_is_413(api: Api) -> None:
    _, key = api.user(credits=100)
    huge = {"filters": {"email": ["x" * 1000] * 2000}}
    r = api.post("/v1/query", key, json=huge)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
