"""Admin API for accounts: users, keys, credits and the audit log, through HTTP on a real DB."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apikit import Api
from sqlalchemy import select

from recordbank.accounts.audit import AdminAudit
from recordbank.accounts.models import ApiKey
from recordbank.billing.models import CreditGrant, LedgerEntry
from recordbank.db.session import session_scope

PLAINTEXT = re.compile(r"rb_live_[A-Za-z0-9]{40}")


def call(api: Api, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    headers = kw.pop("headers", {})
    if key:
        headers["X-API-Key"] = key
    return api.client.request(method, path, headers=headers, **kw)


def code(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def admin(api: Api) -> tuple[int, str]:
    return api.user(role="admin")


def new_user(api: Api, key: str, email: str, **fields: Any) -> dict[str, Any]:
    r = call(api, "POST", "/v1/admin/users", key, json={"email": email, **fields})
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def refused_within(api: Api, key: str, expected: tuple[int, str], seconds: float = 2.0) -> float:
    """Poll a cheap route until the key gets `expected`; how long that took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        r = api.get("/v1/credits", key)
        if r.status_code != 200:
            assert code(r) == expected, r.text
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"key still accepted after {seconds} s")


def audit_rows(api: Api) -> list[AdminAudit]:
    with session_scope(api.runtime.engine) as s:
        return list(s.scalars(select(AdminAudit).order_by(AdminAudit.id)))


ROUTES = [
    ("POST", "/v1/admin/users", {"email": "x@example.com"}),
    ("GET", "/v1/admin/users", None),
    ("GET", "/v1/admin/users/1", None),
    ("PATCH", "/v1/admin/users/1", {"name": "x"}),
    ("POST", "/v1/admin/users/1/credits", {"amount": 5, "reason": "r"}),
    ("POST", "/v1/admin/users/1/keys", {}),
    ("POST", "/v1/admin/keys/1/rotate", None),
    ("DELETE", "/v1/admin/keys/1", None),
    ("GET", "/v1/admin/audit", None),
]


def test_every_route_needs_an_admin_key(api: Api) -> None:
    user, key = api.user(credits=10, scopes=("query", "export", "ingest"))
    for method, path, body in ROUTES:
        assert code(call(api, method, path, json=body)) == (401, "MISSING_API_KEY"), path
        r = call(api, method, path, key, json=body)
        assert code(r) == (403, "FORBIDDEN"), (method, path, r.text)
    # the refusals changed nothing: no user, no grant, no audit row, the key still live
    assert audit_rows(api) == []
    assert api.balance(user) == 10 and api.get("/v1/credits", key).status_code == 200
    # a key with the admin scope is an admin key even on a user account
    _, scoped = api.user(scopes=("admin",))
    assert call(api, "GET", "/v1/admin/users", scoped).status_code == 200


def test_create_user_and_its_refusals(api: Api) -> None:
    _, key = admin(api)
    data = new_user(api, key, "  Alice@Example.COM ", name="Alice", role="admin",
                    rate_limit="20/second;1200/minute")
    assert data["email"] == "alice@example.com" and data["role"] == "admin"
    assert data["status"] == "active" and data["rate_limit"] == "20/second;1200/minute"
    assert data["created_at"].endswith("+00:00")
    dup = call(api, "POST", "/v1/admin/users", key, json={"email": "ALICE@example.com"})
    assert code(dup) == (409, "CONFLICT") and "alice@example.com" in dup.json()["error"]["message"]
    disabled = new_user(api, key, "bob@example.com", status="disabled")
    assert disabled["status"] == "disabled" and disabled["role"] == "user"
    bad = [
        ({"email": "not-an-email"}, "not an email address"),
        ({"email": "a@b"}, "not an email address"),
        ({"email": "a b@example.com"}, "not an email address"),
        ({"email": "x" * 320 + "@example.com"}, "email"),
        ({"email": "c@example.com", "role": "root"}, "role"),
        ({"email": "c@example.com", "status": "gone"}, "status"),
        ({"email": "c@example.com", "rate_limit": "ten per second"}, "bad rate limit"),
        ({"email": "c@example.com", "rate_limit": "10/fortnight"}, "unknown unit"),
        ({"email": "c@example.com", "rate_limit": ""}, "empty"),
        ({"email": "c@example.com", "rol": "admin"}, "rol"),
        ({"name": "no email"}, "email"),
        ({"email": 42}, "email"),
        ({"email": "c@example.com", "name": "a\x00b"}, "U+0000"),
        ({"email": "c@exam\x00ple.com"}, "U+0000"),
    ]
    for body, words in bad:
        r = call(api, "POST", "/v1/admin/users", key, json=body)
        assert code(r) == (422, "VALIDATION_ERROR"), (body, r.text)
        assert words in r.json()["error"]["message"], (body, r.text)
    surrogate = call(api, "POST", "/v1/admin/users", key,
                     content=b'{"email": "c@example.com", "name": "a\\ud800b"}',
                     headers={"Content-Type": "application/json"})
    assert code(surrogate) == (422, "VALIDATION_ERROR") and "body.name" in surrogate.text
    assert code(call(api, "POST", "/v1/admin/users", key, content=b"{nope",
                     headers={"Content-Type": "application/json"})) == (422, "VALIDATION_ERROR")
    listed = call(api, "GET", "/v1/admin/users", key).json()
    assert listed["metadata"]["total"] == 3  # the admin, alice, bob: no refused one was made


def test_list_users_search_filter_and_paging(api: Api) -> None:
    _, key = admin(api)
    new_user(api, key, "percent@example.com", name="100% sure")
    new_user(api, key, "under_score@example.com", name="Under")
    new_user(api, key, "plain@example.org", name="Ünïcode Name", role="admin")
    new_user(api, key, "off@example.org", name="Off", status="disabled")

    def emails(**params: Any) -> list[str]:
        r = call(api, "GET", "/v1/admin/users", key, params=params)
        assert r.status_code == 200, r.text
        return [u["email"] for u in r.json()["data"]]

    assert emails(q="%") == ["percent@example.com"]  # a literal %, not a wildcard
    assert emails(q="_") == ["under_score@example.com"]
    assert emails(q="t_e") == []  # as a wildcard, '_' would match the '@' of percent@example
    assert emails(q="\\") == []
    assert emails(q="UNDER") == ["under_score@example.com"]  # any case, name or email
    assert emails(q="Ünïcode") == ["plain@example.org"]
    assert emails(q="' OR 1=1 --") == []
    assert emails(q="example.org", role="admin") == ["plain@example.org"]
    assert emails(status="disabled") == ["off@example.org"]
    everyone = emails(limit=1000)
    assert len(everyone) == 5 and everyone[1:] == ["percent@example.com",
                                                   "under_score@example.com",
                                                   "plain@example.org", "off@example.org"]
    r = call(api, "GET", "/v1/admin/users", key, params={"limit": 2, "offset": 1}).json()
    assert r["metadata"] == {"total": 5, "limit": 2, "offset": 1, "returned": 2}
    assert [u["email"] for u in r["data"]] == everyone[1:3]
    assert [u["id"] for u in r["data"]] == sorted(u["id"] for u in r["data"])
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"role": "root"},
                   {"status": "x"}, {"q": "x" * 201}, {"q": "a\x00"}):
        assert code(call(api, "GET", "/v1/admin/users", key, params=params)) == \
            (422, "VALIDATION_ERROR"), params


def test_user_detail_shows_keys_without_secrets_and_balance(api: Api) -> None:
    _, key = admin(api)
    user_id, user_key = api.user(credits=70)
    call(api, "DELETE", f"/v1/admin/keys/{api.keys[user_key]}", key)
    r = call(api, "GET", f"/v1/admin/users/{user_id}", key)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["id"] == user_id and data["credits"] == {"balance": 70, "held": 0}
    (listed,) = data["keys"]
    assert listed["id"] == api.keys[user_key] and listed["state"] == "revoked"
    assert user_key.startswith(listed["prefix"]) and listed["revoked_at"]
    assert set(listed) == {"id", "user_id", "name", "prefix", "scopes", "state", "created_at",
                           "last_used_at", "expires_at", "revoked_at"}
    assert user_key not in r.text and "hash" not in r.text
    with session_scope(api.runtime.engine) as s:
        stored = s.get(ApiKey, api.keys[user_key])
        assert stored is not None and stored.key_hash not in r.text
    assert code(call(api, "GET", "/v1/admin/users/999999", key)) == (404, "NOT_FOUND")
    for bad in ("0", "-3", "abc", str(2**63)):
        assert code(call(api, "GET", f"/v1/admin/users/{bad}", key)) == \
            (422, "VALIDATION_ERROR"), bad


def test_update_user_and_disable_refuses_its_keys(api: Api) -> None:
    me, key = admin(api)
    user_id, user_key = api.user()
    path = f"/v1/admin/users/{user_id}"
    r = call(api, "PATCH", path, key, json={"name": "Renamed", "rate_limit": "5/second"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == "Renamed" and r.json()["data"]["rate_limit"] == "5/second"
    r = call(api, "PATCH", path, key, json={"rate_limit": None})  # back to the default
    assert r.status_code == 200 and r.json()["data"]["rate_limit"] is None
    assert r.json()["data"]["name"] == "Renamed"  # fields not sent are kept
    assert call(api, "PATCH", path, key, json={"name": "Renamed"}).status_code == 200  # no-op
    assert call(api, "PATCH", path, key, json={}).status_code == 200
    for body, words in (({"role": None}, "role cannot be null"), ({"status": "gone"}, "status"),
                        ({"rate_limit": "1/lightyear"}, "unknown unit"),
                        ({"email": "x@example.com"}, "email"), ({"name": "x" * 201}, "name")):
        r = call(api, "PATCH", path, key, json=body)
        assert code(r) == (422, "VALIDATION_ERROR") and words in r.json()["error"]["message"], \
            (body, r.text)
    assert code(call(api, "PATCH", "/v1/admin/users/999999", key, json={"name": "x"})) == \
        (404, "NOT_FOUND")
    # an admin cannot lock themselves out
    for body in ({"status": "disabled"}, {"role": "user"}):
        assert code(call(api, "PATCH", f"/v1/admin/users/{me}", key, json=body)) == \
            (409, "CONFLICT")
    assert call(api, "PATCH", f"/v1/admin/users/{me}", key, json={"name": "Me"}).status_code \
        == 200

    assert api.get("/v1/credits", user_key).status_code == 200  # cached now
    assert call(api, "PATCH", path, key, json={"status": "disabled"}).status_code == 200
    took = refused_within(api, user_key, (403, "FORBIDDEN"))
    assert took <= api.runtime.settings.key_cache_seconds + 0.5
    assert call(api, "PATCH", path, key, json={"status": "active"}).status_code == 200
    time.sleep(api.runtime.settings.key_cache_seconds + 0.1)
    assert api.get("/v1/credits", user_key).status_code == 200
    changes = [r.details["changes"] for r in audit_rows(api) if r.action == "user.update"]
    assert {"status": {"from": "active", "to": "disabled"}} in changes
    assert {"name": {"from": "", "to": "Renamed"},
            "rate_limit": {"from": None, "to": "5/second"}} in changes
    assert {"rate_limit": {"from": "5/second", "to": None}} in changes
    assert {"name": {"from": "", "to": "Me"}} in changes
    assert len(changes) == 5  # the refused and the no-op changes wrote nothing


def test_grant_and_adjust_credits(api: Api) -> None:
    _, key = admin(api)
    user_id, _ = api.user()
    path = f"/v1/admin/users/{user_id}/credits"
    soon = datetime.now(UTC) + timedelta(days=30)
    r = call(api, "POST", path, key, json={"amount": 100, "reason": "welcome",
                                           "expires_at": soon.isoformat()})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["kind"] == "grant" and data["balance"] == 100 and data["grant_id"]
    assert data["expires_at"].startswith(soon.date().isoformat())
    with session_scope(api.runtime.engine) as s:
        grant = s.get(CreditGrant, data["grant_id"])
        entry = s.get(LedgerEntry, data["ledger_entry_id"])
        assert grant is not None and grant.user_id == user_id and grant.amount == 100
        assert grant.expires_at is not None and entry is not None
        assert entry.kind == "grant" and entry.grant_id == grant.id and entry.reason == "welcome"
    r = call(api, "POST", path, key, json={"amount": -30, "reason": "refund\treversed\n"})
    assert r.status_code == 201 and r.json()["data"]["kind"] == "adjustment"
    assert r.json()["data"]["balance"] == 70 and r.json()["data"]["grant_id"] is None
    too_much = call(api, "POST", path, key, json={"amount": -71, "reason": "oops"})
    assert code(too_much) == (409, "CONFLICT")
    err = too_much.json()["error"]
    assert "Required: 71, Available: 70" in err["message"]
    assert err["details"] == {"required": 71, "available": 70}
    assert api.balance(user_id) == 70
    bad = [
        ({"amount": 0, "reason": "x"}, "must not be 0"),
        ({"amount": 5}, "reason"),
        ({"amount": 5, "reason": "   "}, "reason is required"),
        ({"amount": True, "reason": "x"}, "amount"),
        ({"amount": "5", "reason": "x"}, "amount"),
        ({"amount": 1.5, "reason": "x"}, "amount"),
        ({"amount": 10**12 + 1, "reason": "x"}, "less than or equal to 1000000000000"),
        ({"amount": -(10**12) - 1, "reason": "x"}, "greater than or equal"),
        ({"amount": 5, "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}, "not in the future"),
        ({"amount": -5, "reason": "x", "expires_at": soon.isoformat()}, "grants"),
        ({"amount": 5, "reason": "x", "extra": 1}, "extra"),
        ({"amount": 5, "reason": "bad\x00byte"}, "U+0000"),
    ]
    for body, words in bad:
        r = call(api, "POST", path, key, json=body)
        assert code(r) == (422, "VALIDATION_ERROR") and words in r.json()["error"]["message"], \
            (body, r.text)
    assert code(call(api, "POST", "/v1/admin/users/999999/credits", key,
                     json={"amount": 5, "reason": "x"})) == (404, "NOT_FOUND")
    assert api.balance(user_id) == 70
    with session_scope(api.runtime.engine) as s:
        kinds = s.scalars(select(LedgerEntry.kind).where(LedgerEntry.user_id == user_id)
                          .order_by(LedgerEntry.id)).all()
        assert kinds == ["grant", "adjustment"]  # refusals wrote nothing
    assert [(r.action, r.details["amount"]) for r in audit_rows(api)] == \
        [("credits.grant", 100), ("credits.adjust", -30)]  # and audited nothing


def test_credit_grant_retried_with_idempotency_key_is_applied_once(api: Api) -> None:
    _, key = admin(api)
    user_id, _ = api.user()
    path = f"/v1/admin/users/{user_id}/credits"
    body = {"amount": 250, "reason": "invoice 17"}
    first = call(api, "POST", path, key, json=body, headers={"Idempotency-Key": "inv-17"})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    # the same body in another key order and spacing is the same request
    again = call(api, "POST", path, key, content=b'{ "reason": "invoice 17", "amount": 250 }',
                 headers={"Idempotency-Key": "inv-17", "Content-Type": "application/json"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # the replay changed nothing: one grant, one audit row
    audited = [r for r in audit_rows(api) if r.action == "credits.grant"]
    assert [(r.target_id, r.details["amount"], r.details["grant_id"]) for r in audited] == \
        [(user_id, 250, first.json()["data"]["grant_id"])]
    other = call(api, "POST", path, key, json={**body, "amount": 251},
                 headers={"Idempotency-Key": "inv-17"})
    assert code(other) == (409, "CONFLICT")
    elsewhere = call(api, "POST", "/v1/admin/users/999999/credits", key, json=body,
                     headers={"Idempotency-Key": "inv-17"})
    assert code(elsewhere) == (409, "CONFLICT")  # another target is another request
    # a first attempt that failed leaves the key free
    failed = call(api, "POST", path, key, json={"amount": -10**6, "reason": "x"},
                  headers={"Idempotency-Key": "inv-18"})
    assert code(failed) == (409, "CONFLICT") and "Required" in failed.json()["error"]["message"]
    ok = call(api, "POST", path, key, json={"amount": 5, "reason": "x"},
              headers={"Idempotency-Key": "inv-18"})
    assert ok.status_code == 201 and "Idempotent-Replayed" not in ok.headers
    assert code(call(api, "POST", path, key, json=body, headers={"Idempotency-Key": "k" * 201})) \
        == (400, "INVALID_QUERY")
    with session_scope(api.runtime.engine) as s:
        grants = s.scalars(select(LedgerEntry.amount).where(
            LedgerEntry.user_id == user_id, LedgerEntry.kind == "grant")).all()
    assert sorted(grants) == [5, 250]
    assert api.balance(user_id) == 255
    # one row per applied change: not for the replay, the conflicts or the failed attempt
    audited = [(r.action, r.details["amount"]) for r in audit_rows(api)]
    assert audited == [("credits.grant", 250), ("credits.grant", 5)]


def test_issue_key_plaintext_once(api: Api) -> None:
    _, key = admin(api)
    user_id, _ = api.user(credits=5)
    path = f"/v1/admin/users/{user_id}/keys"
    r = call(api, "POST", path, key, json={"name": "ci"})
    assert r.status_code == 201, r.text
    issued = r.json()["data"]
    plaintext = issued["key"]
    assert PLAINTEXT.fullmatch(plaintext) and plaintext.startswith(issued["prefix"])
    assert issued["scopes"] == ["query", "export"] and issued["name"] == "ci"
    assert issued["state"] == "active" and issued["user_id"] == user_id
    assert api.get("/v1/credits", plaintext).json()["data"]["balance"] == 5
    detail = call(api, "GET", f"/v1/admin/users/{user_id}", key)
    assert plaintext not in detail.text and issued["prefix"] in detail.text
    later = datetime.now(UTC) + timedelta(days=1)
    r = call(api, "POST", path, key, json={"scopes": ["ingest"], "admin": True,
                                           "expires_at": later.isoformat()})
    assert r.status_code == 201 and r.json()["data"]["scopes"] == ["ingest", "admin"]
    admin_key = r.json()["data"]["key"]
    r_id = r.json()["data"]["id"]
    assert call(api, "GET", "/v1/admin/users", admin_key).status_code == 200
    assert r.json()["data"]["expires_at"].startswith(later.date().isoformat())
    for body, words in (({"scopes": ["root"]}, "scopes"),
                        ({"expires_at": "2000-01-01"}, "not in the future"),
                        ({"admin": "maybe"}, "admin"), ({"name": "x" * 201}, "name"),
                        ({"name": "\x07"}, "U+0007")):
        r = call(api, "POST", path, key, json=body)
        assert code(r) == (422, "VALIDATION_ERROR") and words in r.json()["error"]["message"], \
            (body, r.text)
    assert code(call(api, "POST", "/v1/admin/users/999999/keys", key, json={})) == \
        (404, "NOT_FOUND")
    # two keys issued, two audit rows; the refusals left neither key nor row
    assert [(r.action, r.target_id) for r in audit_rows(api)] == \
        [("key.issue", issued["id"]), ("key.issue", r_id)]


def test_rotate_replaces_the_key(api: Api) -> None:
    _, key = admin(api)
    user_id, _ = api.user(credits=9)
    later = datetime.now(UTC) + timedelta(days=2)
    old = call(api, "POST", f"/v1/admin/users/{user_id}/keys", key,
               json={"name": "deploy", "scopes": ["query"], "expires_at": later.isoformat()})
    old_key, old_id = old.json()["data"]["key"], old.json()["data"]["id"]
    assert api.get("/v1/credits", old_key).status_code == 200  # cached now
    r = call(api, "POST", f"/v1/admin/keys/{old_id}/rotate", key)
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert new["replaced_key_id"] == old_id and new["id"] != old_id
    assert (new["user_id"], new["name"], new["scopes"]) == (user_id, "deploy", ["query"])
    assert new["expires_at"] == old.json()["data"]["expires_at"]
    assert PLAINTEXT.fullmatch(new["key"]) and new["key"] != old_key
    assert api.get("/v1/credits", new["key"]).json()["data"]["balance"] == 9
    refused_within(api, old_key, (401, "INVALID_API_KEY"))
    again = call(api, "POST", f"/v1/admin/keys/{old_id}/rotate", key)
    assert code(again) == (409, "CONFLICT") and "revoked" in again.json()["error"]["message"]
    assert code(call(api, "POST", "/v1/admin/keys/999999/rotate", key)) == (404, "NOT_FOUND")
    _, expired = api.user(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    r = call(api, "POST", f"/v1/admin/keys/{api.keys[expired]}/rotate", key)
    assert code(r) == (409, "CONFLICT") and "expired" in r.json()["error"]["message"]
    with session_scope(api.runtime.engine) as s:  # the refused rotation left the key as it was
        row = s.get(ApiKey, api.keys[expired])
        assert row is not None and row.revoked_at is None
        keys = s.scalars(select(ApiKey).where(ApiKey.user_id == user_id)).all()
        assert len(keys) == 3  # api.user's own, the rotated one, its replacement


def test_revoke_is_idempotent(api: Api) -> None:
    _, key = admin(api)
    _, user_key = api.user()
    key_id = api.keys[user_key]
    assert api.get("/v1/credits", user_key).status_code == 200
    r = call(api, "DELETE", f"/v1/admin/keys/{key_id}", key)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["state"] == "revoked"
    assert r.json()["metadata"] == {"already_revoked": False}
    again = call(api, "DELETE", f"/v1/admin/keys/{key_id}", key)
    assert again.status_code == 200 and again.json()["metadata"] == {"already_revoked": True}
    assert again.json()["data"]["revoked_at"] == r.json()["data"]["revoked_at"]
    refused_within(api, user_key, (401, "INVALID_API_KEY"))
    assert code(call(api, "DELETE", "/v1/admin/keys/999999", key)) == (404, "NOT_FOUND")
    assert [a.target_id for a in audit_rows(api) if a.action == "key.revoke"] == [key_id]


def test_every_change_is_audited_without_plaintext_keys(api: Api) -> None:
    me, key = admin(api)
    my_key_id = api.keys[key]
    hdr = {"X-Request-ID": "audit-req-1"}
    user = new_user(api, key, "audited@example.com")
    uid = user["id"]
    call(api, "PATCH", f"/v1/admin/users/{uid}", key, json={"name": "A"}, headers=hdr)
    call(api, "POST", f"/v1/admin/users/{uid}/credits", key, json={"amount": 9, "reason": "r"})
    call(api, "POST", f"/v1/admin/users/{uid}/credits", key, json={"amount": -4, "reason": "r"})
    issued = call(api, "POST", f"/v1/admin/users/{uid}/keys", key, json={}).json()["data"]
    rotated = call(api, "POST", f"/v1/admin/keys/{issued['id']}/rotate", key).json()["data"]
    call(api, "DELETE", f"/v1/admin/keys/{rotated['id']}", key)
    # refusals are not changes: no rows for them
    call(api, "POST", "/v1/admin/users", key, json={"email": "audited@example.com"})
    call(api, "DELETE", "/v1/admin/keys/999999", key)

    r = call(api, "GET", "/v1/admin/audit", key)
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    assert [x["action"] for x in rows] == ["key.revoke", "key.rotate", "key.issue",
                                           "credits.adjust", "credits.grant", "user.update",
                                           "user.create"]  # newest first
    assert r.json()["metadata"] == {"total": 7, "limit": 100, "offset": 0, "returned": 7}
    assert all(x["actor_user_id"] == me and x["actor_key_id"] == my_key_id for x in rows)
    by = {x["action"]: x for x in rows}
    assert by["user.update"]["request_id"] == "audit-req-1"
    assert by["user.update"]["details"] == {"changes": {"name": {"from": "", "to": "A"}}}
    assert (by["user.create"]["target_type"], by["user.create"]["target_id"]) == ("user", uid)
    assert by["credits.grant"]["details"]["amount"] == 9
    assert by["credits.adjust"]["details"]["balance"] == 5
    assert by["key.issue"]["target_id"] == issued["id"]
    assert by["key.issue"]["details"]["prefix"] == issued["prefix"]
    assert by["key.rotate"]["target_id"] == issued["id"]
    assert by["key.rotate"]["details"]["new_key_id"] == rotated["id"]
    assert by["key.revoke"]["target_id"] == rotated["id"]
    # no plaintext anywhere: not in the answer, not in the table
    stored = json.dumps([[a.details, a.request_id] for a in audit_rows(api)])
    for text in (r.text, stored):
        assert issued["key"] not in text and rotated["key"] not in text and key not in text
        assert not PLAINTEXT.search(text)

    def actions(**params: Any) -> list[str]:
        got = call(api, "GET", "/v1/admin/audit", key, params=params)
        assert got.status_code == 200, got.text
        return [x["action"] for x in got.json()["data"]]

    assert actions(action="credits.grant") == ["credits.grant"]
    assert actions(target=f"user:{uid}") == ["credits.adjust", "credits.grant", "user.update",
                                             "user.create"]
    assert actions(target="key") == ["key.revoke", "key.rotate", "key.issue"]
    assert actions(target=f"key:{issued['id']}") == ["key.rotate", "key.issue"]
    assert len(actions(actor=me)) == 7 and actions(actor=me + 1000) == []
    assert actions(since="2999-01-01") == [] and actions(until="2000-01-01") == []
    assert len(actions(since="2000-01-01T00:00:00Z", until="2999-01-01")) == 7
    page = call(api, "GET", "/v1/admin/audit", key, params={"limit": 2, "offset": 5}).json()
    assert [x["action"] for x in page["data"]] == ["user.update", "user.create"]
    assert page["metadata"] == {"total": 7, "limit": 2, "offset": 5, "returned": 2}
    for params in ({"action": "user.delete"}, {"target": "user:x"}, {"target": "users"},
                   {"target": "user:1 OR 1=1"}, {"actor": 0}, {"since": "yesterday"},
                   {"limit": 1001}):
        assert code(call(api, "GET", "/v1/admin/audit", key, params=params)) == \
            (422, "VALIDATION_ERROR"), params


def test_openapi_documents_every_admin_route(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    wanted = {(m.lower(), p.replace("/1", "/{user_id}" if "users" in p else "/{key_id}"))
              for m, p, _ in ROUTES}
    for method, path in wanted:
        op = doc["paths"][path][method]
        assert op["tags"] == ["admin"], path
        assert {"401", "403", "422"} <= set(op["responses"]), (method, path)
        assert "404" in op["responses"] or "/{" not in path, (method, path)
    assert "409" in doc["paths"]["/v1/admin/users/{user_id}/credits"]["post"]["responses"]
    assert "Idempotency-Key" in json.dumps(
        doc["paths"]["/v1/admin/users/{user_id}/credits"]["post"]["parameters"])


@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_wrong_methods_are_refused_in_the_envelope(api: Api, method: str) -> None:
    _, key = admin(api)
    r = call(api, method, "/v1/admin/keys/1/rotate", key)
    assert r.status_code == 405 and r.json()["status"] == "error"
