"""/v1/admin/webhooks: admins add, list and delete webhooks and read their deliveries; a real
query that takes a balance below a threshold queues one balance.low delivery."""

from __future__ import annotations

from apikit import Api, fill_people

from recordbank.notify import webhooks


def test_admins_manage_webhooks_and_see_deliveries(api: Api) -> None:
    _, admin = api.user(role="admin")
    _, user_key = api.user(credits=10)
    assert api.get("/v1/admin/webhooks", user_key).status_code == 403
    assert api.get("/v1/admin/webhooks").status_code == 401
    made = api.post("/v1/admin/webhooks", admin, json={
        "url": "http://127.0.0.1:9/hook", "events": ["job.completed", "job.failed"]})
    assert made.status_code == 201, made.text
    hook_id, secret = made.json()["data"]["id"], made.json()["data"]["secret"]
    assert secret.startswith("whsec_")
    listed = api.get("/v1/admin/webhooks", admin).json()
    assert [h["id"] for h in listed["data"]] == [hook_id]
    assert secret not in str(listed)  # the secret was shown once
    for bad in ({"url": "ftp://x/y", "events": ["job.failed"]},
                {"url": "http://x/y", "events": ["nope"]},
                {"url": "http://x/y", "events": ["balance.low"]},
                {"url": "http://x/y", "events": ["job.failed"], "extra": 1}):
        r = api.post("/v1/admin/webhooks", admin, json=bad)
        assert r.status_code in (400, 422), (bad, r.text)
    assert api.delete(f"/v1/admin/webhooks/{hook_id + 100}", admin).status_code == 404
    assert api.delete(f"/v1/admin/webhooks/{hook_id}", admin).status_code == 200
    assert api.get("/v1/admin/webhooks", admin).json()["data"] == []


def test_a_charge_below_the_threshold_queues_balance_low_once(api: Api) -> None:
    fill_people(api.runtime, 3000)
    _, admin = api.user(role="admin")
    user, key = api.user(credits=150)
    made = api.post("/v1/admin/webhooks", admin, json={
        "url": "http://127.0.0.1:9/hook", "events": ["balance.low"],
        "balance_threshold": 145})
    assert made.status_code == 201, made.text
    webhooks._cache.clear()
    for _ in range(2):  # 150 -> 139 crosses 145; 139 -> 128 does not
        r = api.get("/v1/records?_limit=1000&_fields=id", key)
        assert r.status_code == 200, r.text
    got = api.get("/v1/admin/webhooks/deliveries?status=pending", admin).json()
    assert got["metadata"]["total"] == 1
    [d] = got["data"]
    assert d["event"] == "balance.low"
    assert d["payload"]["data"] == {"user_id": user, "balance": 139, "previous_balance": 150,
                                    "threshold": 145}
    assert api.get("/v1/admin/webhooks/deliveries?status=bogus", admin).status_code == 422


def test_adding_and_deleting_webhooks_is_audited_without_the_secret(api: Api) -> None:
    me, admin = api.user(role="admin")
    made = api.post("/v1/admin/webhooks", admin, json={
        "url": "https://hooks.example.com/in?token=QTOKEN42", "events": ["balance.low"],
        "balance_threshold": 50, "description": "ops pager"})
    assert made.status_code == 201, made.text
    hook_id, secret = made.json()["data"]["id"], made.json()["data"]["secret"]
    assert api.post("/v1/admin/webhooks", admin, json={
        "url": "ftp://x/y", "events": ["job.failed"]}).status_code in (400, 422)
    assert api.delete(f"/v1/admin/webhooks/{hook_id + 1}", admin).status_code == 404
    assert api.delete(f"/v1/admin/webhooks/{hook_id}", admin).status_code == 200
    assert api.delete(f"/v1/admin/webhooks/{hook_id}", admin).status_code == 404
    r = api.get("/v1/admin/audit", admin, params={"target": "webhook"})
    assert r.status_code == 200, r.text
    rows = list(reversed(r.json()["data"]))
    assert [(x["action"], x["target_type"], x["target_id"], x["actor_user_id"])
            for x in rows] == [("webhook.create", "webhook", hook_id, me),
                               ("webhook.delete", "webhook", hook_id, me)]
    summary = {"url": "https://hooks.example.com/in?token=[redacted]",
               "events": ["balance.low"], "balance_threshold": 50, "description": "ops pager"}
    assert rows[0]["details"] == summary and rows[1]["details"] == summary
    assert secret not in r.text and "QTOKEN42" not in r.text
    assert api.get("/v1/admin/audit", admin,
                   params={"target": f"webhook:{hook_id + 1}"}).json()["data"] == []
