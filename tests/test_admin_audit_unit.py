"""accounts.audit and accounts.admin below the API: the scrubber, the migration, argument
checks, and concurrent rotations/revocations of one key on a real DB (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select

from recordbank.accounts import admin, audit
from recordbank.accounts.audit import REDACTED, Actor, AdminAudit
from recordbank.accounts.keys import generate_key
from recordbank.accounts.models import ApiKey
from recordbank.accounts.users import AccountError, create_user, issue_key
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
