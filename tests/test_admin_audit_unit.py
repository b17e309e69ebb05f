"""accounts.audit and accounts.admin below the API: the scrubber, the migration, argument
checks, concurrent rotations/revocations of one key, and changes that commit (or vanish) with
their audit row, on a real DB (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select

from recordbank.accounts import admin, audit
from recordbank.accounts.audit import REDACTED, Actor, AdminAudit
from recordbank.accounts.keys import generate_key
from recordbank.accounts.models import ApiKey, User
from recordbank.accounts.users import AccountError, create_user, issue_key
from recordbank.billing import ledger
from recordbank.billing.models import CreditGrant, LedgerEntry
from recordbank.db.session import get_engine, session_scope

ACTOR = Actor(user_id=1, key_id=2, request_id="req-1")


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


def test_scrub_redacts_plaintext_keys_anywhere_and_makes_json() -> None:
    key = generate_key()
    when = datetime(2025, 1, 2, 3, 4, 5)
    out = audit.scrub({"note": f"sent {key} by mail", "nested": [{"k": key}, (key,)],
                       "at": when, "n": 3, "ok": True, "none": None, 7: {key}, "obj": [key]})
    assert key not in repr(out)
    assert out["note"] == f"sent {REDACTED} by mail"
    assert out["nested"] == [{"k": REDACTED}, [REDACTED]]
    assert out["at"] == "2025-01-02T03:04:05+00:00" and out["7"] == [REDACTED]
    assert (out["n"], out["ok"], out["none"]) == (3, True, None)
    assert audit.scrub("rb_live_short") == "rb_live_short"  # a prefix is not a secret


def test_migration_creates_the_audit_table(engine: Engine) -> None:
    insp = inspect(engine)
    columns = {c["name"] for c in insp.get_columns("admin_audit")}
    assert columns == {"id", "created_at", "actor_user_id", "actor_key_id", "action",
                       "target_type", "target_id", "details", "request_id"}
    indexes = {i["name"]: i["column_names"] for i in insp.get_indexes("admin_audit")}
    assert indexes["ix_admin_audit_target"] == ["target_type", "target_id"]
    assert {"ix_admin_audit_created_at", "ix_admin_audit_actor_user_id",
            "ix_admin_audit_action"} <= set(indexes)


def test_write_and_search_check_their_arguments(engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown audit action"), session_scope(engine) as s:
        audit.write(s, ACTOR, "user.delete", "user", 1)
    with pytest.raises(ValueError, match="target type"), session_scope(engine) as s:
        audit.write(s, ACTOR, "user.create", "grant", 1)
    key = generate_key()
    row_id = audit.record(engine, ACTOR, "key.issue", "key", 5, {"oops": key})
    rows, total = audit.search(engine)
    assert total == 1 and rows[0]["id"] == row_id and rows[0]["details"] == {"oops": REDACTED}
    assert rows[0]["request_id"] == "req-1" and rows[0]["created_at"].endswith("+00:00")
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"action": "x"},
                {"target_type": "grant"}):
        with pytest.raises(ValueError):
            audit.search(engine, **bad)
    naive_future = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    assert audit.search(engine, since=naive_future)[1] == 0  # naive = UTC
    assert audit.search(engine, until=naive_future)[1] == 1


def test_account_functions_refuse_bad_input(engine: Engine) -> None:
    for email in ("", "plain", "a@b", "a@@b.c", "a\tb@c.d", "x" * 320 + "@e.com"):
        with pytest.raises(AccountError):
            admin.normalize_email(email)
    assert admin.normalize_email(" A.B+c@Example.ORG ") == "a.b+c@example.org"
    with pytest.raises(AccountError, match="role"):
        admin.create_user(engine, ACTOR, "r@example.com", role="root")
    user = admin.create_user(engine, ACTOR, "r@example.com")
    with pytest.raises(admin.Conflict):
        admin.create_user(engine, ACTOR, "R@EXAMPLE.COM")
    with pytest.raises(AccountError, match="cannot change email"):
        admin.update_user(engine, ACTOR, user["id"], {"email": "s@example.com"})
    with pytest.raises(AccountError, match="status"):
        admin.update_user(engine, ACTOR, user["id"], {"status": "gone"})
    with pytest.raises(admin.NotFound):
        admin.update_user(engine, ACTOR, 10**12, {"name": "x"})
    with pytest.raises(ValueError):
        admin.search_users(engine, limit=0)
    with pytest.raises(AccountError):
        admin.search_users(engine, role="root")
    # one audit row per change made, none for the refusals
    assert [r["action"] for r in audit.search(engine)[0]] == ["user.create"]


def _race(n: int, work: Any) -> list[Any]:
    """Run `work` on n threads released at once; its results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_rotations_of_one_key_make_exactly_one_new_key(engine: Engine) -> None:
    user = create_user(engine, "rot@example.com")
    old = issue_key(engine, user.id, name="deploy", scopes=["query"])
    results = _race(4, lambda: admin.rotate_key(engine, ACTOR, old.id))
    won = [r for r in results if isinstance(r, admin.RotatedKey)]
    assert len(won) == 1, results
    assert all(isinstance(r, admin.Conflict) for r in results if r is not won[0]), results
    with session_scope(engine) as s:
        keys = s.scalars(select(ApiKey).where(ApiKey.user_id == user.id)
                         .order_by(ApiKey.id)).all()
        assert [k.id for k in keys] == [old.id, won[0].issued.id]
        assert keys[0].revoked_at is not None and keys[1].revoked_at is None
        assert (keys[1].name, keys[1].scopes) == ("deploy", ["query"])
        rows = s.scalars(select(AdminAudit)).all()
        assert [(r.action, r.target_id) for r in rows] == [("key.rotate", old.id)]


def test_concurrent_revocations_audit_once(engine: Engine) -> None:
    user = create_user(engine, "rev@example.com")
    key = issue_key(engine, user.id)
    results = _race(4, lambda: admin.revoke_key(engine, ACTOR, key.id))
    assert all(isinstance(r, tuple) for r in results), results
    assert sorted(r[1] for r in results) == [False, False, False, True]
    assert len({r[0]["revoked_at"] for r in results}) == 1
    assert [r["action"] for r in audit.search(engine)[0]] == ["key.revoke"]
    with pytest.raises(admin.NotFound):
        admin.revoke_key(engine, ACTOR, 10**12)


def _ledger_kinds(engine: Engine, user_id: int) -> list[str]:
    with session_scope(engine) as s:
        return list(s.scalars(select(LedgerEntry.kind).where(LedgerEntry.user_id == user_id)
                              .order_by(LedgerEntry.id)))


def _audited(engine: Engine) -> list[tuple[str, int | None]]:
    return [(r["action"], r["target_id"]) for r in reversed(audit.search(engine)[0])]


def test_a_credit_change_and_its_audit_row_commit_together(engine: Engine) -> None:
    user = create_user(engine, "cred@example.com")
    soon = datetime.now(UTC) + timedelta(days=3)
    granted = admin.change_credits(engine, ACTOR, user.id, 100, reason="welcome",
                                   expires_at=soon, request_id="req-9")
    taken = admin.change_credits(engine, ACTOR, user.id, -30, reason="refund")
    assert (granted["kind"], granted["balance"], taken["kind"], taken["balance"]) == \
        ("grant", 100, "adjustment", 70)
    with session_scope(engine) as s:
        entry = s.get(LedgerEntry, granted["ledger_entry_id"])
        assert entry is not None and entry.grant_id == granted["grant_id"] == \
            s.scalars(select(CreditGrant.id).where(CreditGrant.user_id == user.id)).one()
        assert entry.request_id == "req-9"
    rows = [r for r in reversed(audit.search(engine)[0])]
    assert [(r["action"], r["target_type"], r["target_id"]) for r in rows] == \
        [("credits.grant", "user", user.id), ("credits.adjust", "user", user.id)]
    # the row holds the balance of its own transaction, and the ids of what it wrote
    assert rows[0]["details"]["balance"] == 100 and rows[1]["details"]["balance"] == 70
    assert rows[0]["details"]["ledger_entry_id"] == granted["ledger_entry_id"]
    assert rows[1]["details"]["ledger_entry_id"] == taken["ledger_entry_id"]

    refusals: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"user_id": 10**12, "amount": 5}, ledger.UnknownUser),
        ({"amount": 0}, ValueError), ({"amount": True}, TypeError),
        ({"amount": 5, "reason": "  "}, ValueError),
        ({"amount": 5, "expires_at": datetime.now(UTC) - timedelta(seconds=1)}, ValueError),
        ({"amount": -5, "expires_at": soon}, ValueError),
        ({"amount": -71}, ledger.InsufficientCredits),
        ({"amount": 2**63}, ValueError),
    ]
    for args, error in refusals:
        call = {"user_id": user.id, "reason": "x", **args}
        with pytest.raises(error):
            admin.change_credits(engine, ACTOR, call.pop("user_id"), call.pop("amount"),
                                 **call)
    # none of the refusals wrote a ledger row, a grant or an audit row
    assert _ledger_kinds(engine, user.id) == ["grant", "adjustment"]
    assert ledger.balance(engine, user.id) == 70 and len(audit.search(engine)[0]) == 2


class Crash(Exception):
    """Stands for the process dying after the change and its audit row, before the commit."""


@pytest.fixture
def crash_after_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    real = audit.write

    def write_then_crash(*args: Any, **kw: Any) -> AdminAudit:
        real(*args, **kw)
        raise Crash

    monkeypatch.setattr(audit, "write", write_then_crash)


def test_a_crash_before_commit_loses_the_change_with_its_audit_row(
        engine: Engine, request: pytest.FixtureRequest) -> None:
    user = create_user(engine, "crash@example.com")
    key = issue_key(engine, user.id)
    admin.change_credits(engine, ACTOR, user.id, 50, reason="before")
    request.getfixturevalue("crash_after_audit")
    with pytest.raises(Crash):
        admin.change_credits(engine, ACTOR, user.id, 25, reason="lost")
    with pytest.raises(Crash):
        admin.change_credits(engine, ACTOR, user.id, -10, reason="lost")
    with pytest.raises(Crash):
        admin.issue_key(engine, ACTOR, user.id, scopes=["query"])
    with pytest.raises(Crash):
        admin.rotate_key(engine, ACTOR, key.id)
    with pytest.raises(Crash):
        admin.revoke_key(engine, ACTOR, key.id)
    assert _ledger_kinds(engine, user.id) == ["grant"] and ledger.balance(engine, user.id) == 50
    with session_scope(engine) as s:
        keys = s.scalars(select(ApiKey).where(ApiKey.user_id == user.id)).all()
        assert [(k.id, k.revoked_at) for k in keys] == [(key.id, None)]
    assert _audited(engine) == [("credits.grant", user.id)]


def test_issue_key_is_audited_in_its_transaction(engine: Engine) -> None:
    user = create_user(engine, "keys@example.com")
    with session_scope(engine) as s:
        before = s.get(User, user.id)
        assert before is not None
        updated_at = before.updated_at
    issued = admin.issue_key(engine, ACTOR, user.id, name="ci", scopes=["query", "ingest"])
    with session_scope(engine) as s:
        row = s.get(ApiKey, issued.id)
        assert row is not None and (row.user_id, row.name, row.scopes) == \
            (user.id, "ci", ["query", "ingest"])
        after = s.get(User, user.id)
        assert after is not None and after.updated_at == updated_at  # the lock changed nothing
    [entry] = audit.search(engine)[0]
    assert (entry["action"], entry["target_id"]) == ("key.issue", issued.id)
    assert entry["details"]["prefix"] == issued.prefix
    assert issued.plaintext not in str(entry)
    with pytest.raises(admin.NotFound):
        admin.issue_key(engine, ACTOR, 10**12, scopes=["query"])
    with pytest.raises(AccountError, match="scopes"):
        admin.issue_key(engine, ACTOR, user.id, scopes=["root"])
    with session_scope(engine) as s:
        assert s.scalars(select(ApiKey.id)).all() == [issued.id]
    assert _audited(engine) == [("key.issue", issued.id)]


def test_scrub_also_redacts_webhook_secrets_and_safe_url_drops_tokens() -> None:
    secret = "whsec_" + "A" * 43
    assert audit.scrub({"s": f"x {secret} y"}) == {"s": f"x {REDACTED} y"}
    assert audit.safe_url("https://u:pw@h.example:8443/p?token=abc&page=2#f") == \
        f"https://u:{REDACTED}@h.example:8443/p?token={REDACTED}&page={REDACTED}"
    assert audit.safe_url("http://h.example/hook") == "http://h.example/hook"
    assert audit.safe_url("http://h.example/p?flag") == "http://h.example/p?flag"


def test_source_and_webhook_changes_commit_with_their_audit_rows(engine: Engine) -> None:
    """What the admin routes pass as `also`: the audit row joins the change's transaction;
    a crash after it (before the commit) leaves neither the change nor the row."""
    from recordbank.ingest import http_sources_model as sources
    from recordbank.notify import webhooks

    def audited(action: str, crash: bool = False) -> Any:
        def write(session: Any, *shown: dict[str, Any]) -> None:
            audit.write(session, ACTOR, action, action.split(".")[0], shown[-1]["id"], {})
            if crash:
                raise Crash
        return write

    with pytest.raises(Crash):
        sources.create(engine, name="lost", url="http://127.0.0.1:9/x",
                       also=audited("source.create", crash=True))
    assert [s["name"] for s in sources.list_all(engine)] == []
    made = sources.create(engine, name="kept", url="http://127.0.0.1:9/x",
                          also=audited("source.create"))
    with pytest.raises(Crash):
        sources.update(engine, made["id"], {"interval_seconds": 60},
                       also=audited("source.update", crash=True))
    assert sources.get(engine, made["id"])["interval_seconds"] == 3600
    with pytest.raises(Crash):
        sources.delete(engine, made["id"], also=audited("source.delete", crash=True))
    assert sources.get(engine, made["id"])["name"] == "kept"

    with pytest.raises(Crash):
        webhooks.create_webhook(engine, "http://127.0.0.1:9/hook", ["job.completed"],
                                also=audited("webhook.create", crash=True))
    assert webhooks.list_webhooks(engine) == []
    hook = webhooks.create_webhook(engine, "http://127.0.0.1:9/hook", ["job.completed"],
                                   also=audited("webhook.create"))
    with pytest.raises(Crash):
        webhooks.delete_webhook(engine, hook.id, also=audited("webhook.delete", crash=True))
    assert [h["id"] for h in webhooks.list_webhooks(engine)] == [hook.id]
    assert not webhooks.delete_webhook(engine, hook.id + 1000, also=audited("webhook.delete"))
    assert webhooks.delete_webhook(engine, hook.id, also=audited("webhook.delete"))
    assert webhooks.list_webhooks(engine) == []
    assert _audited(engine) == [("source.create", made["id"]), ("webhook.create", hook.id),
                                ("webhook.delete", hook.id)]
