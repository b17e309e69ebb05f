"""Webhooks against a real local HTTP receiver: signed deliveries a receiver can verify, retries
with backoff until a 2xx or the last attempt, events for job outcomes (written with the outcome)
and for balances crossing a threshold, once per crossing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from local_http import Receiver, receiving
from sqlalchemy import Engine, select

from recordbank.config import Settings
from recordbank.db.session import get_engine, session_scope
from recordbank.ingest import queue
from recordbank.ingest.sources import file_checksum
from recordbank.ingest.worker import Worker
from recordbank.notify import webhooks
from recordbank.notify.dispatch import Dispatcher, deliveries
from recordbank.notify.models import WebhookDelivery
from recordbank.runtime import Runtime
from recordbank.sample import HEADER, generate_people, write_csv


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(Settings(database_url=database_url).resolved_database_url())


def all_deliveries(engine: Engine) -> list[WebhookDelivery]:
    with session_scope(engine) as s:
        return list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_delivery_is_signed_and_verifiable(engine: Engine, receiver: Receiver) -> None:
    hook = webhooks.create_webhook(engine, receiver.url, ["job.completed"])
    with session_scope(engine) as s:
        assert webhooks.emit(s, "job.completed", {"job_id": 7}) == 1
        assert webhooks.emit(s, "job.failed", {"job_id": 8}) == 0  # not subscribed
    dispatcher = Dispatcher(engine)
    try:
        assert dispatcher.send_due() == 1
    finally:
        dispatcher.close()
    [got] = receiver.got
    h = {k.lower(): v for k, v in got["headers"].items()}
    assert h["x-recordbank-event"] == "job.completed"
    assert webhooks.verify(hook.secret, h["x-recordbank-timestamp"], got["body"],
                           h["x-recordbank-signature"])
    assert not webhooks.verify("whsec_wrong", h["x-recordbank-timestamp"], got["body"],
                               h["x-recordbank-signature"])
    assert not webhooks.verify(hook.secret, h["x-recordbank-timestamp"], got["body"] + b" ",
                               h["x-recordbank-signature"])
    old = str(int(h["x-recordbank-timestamp"]) - 3600)  # a replay of an old delivery
    assert not webhooks.verify(hook.secret, old, got["body"], h["x-recordbank-signature"])
    assert json.loads(got["body"])["data"] == {"job_id": 7}
    [d] = all_deliveries(engine)
    assert (d.status, d.attempts, d.last_status_code) == ("delivered", 1, 200)
    assert "secret" not in json.dumps(webhooks.list_webhooks(engine), default=str)


def test_failures_retry_with_backoff_until_delivered(engine: Engine,
                                                     receiver: Receiver) -> None:
    webhooks.create_webhook(engine, receiver.url, ["job.failed"])
    with session_scope(engine) as s:
        webhooks.emit(s, "job.failed", {"job_id": 1})
    receiver.answers = [500, 503]
    dispatcher = Dispatcher(engine, backoff_base=10)
    now = datetime.now(UTC)
    try:
        assert dispatcher.send_due(now) == 1
        [d] = all_deliveries(engine)
        assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
        assert dispatcher.send_due(now) == 0  # not due yet: 10 s backoff
        assert dispatcher.send_due(now + timedelta(seconds=11)) == 1
        [d] = all_deliveries(engine)
        assert (d.attempts, d.last_status_code) == (2, 503) and "503" in (d.last_error or "")
        assert dispatcher.send_due(now + timedelta(seconds=25)) == 0  # then 20 s
        assert dispatcher.send_due(now + timedelta(seconds=32)) == 1
    finally:
        dispatcher.close()
    [d] = all_deliveries(engine)
    assert (d.status, d.attempts) == ("delivered", 3)
    assert len(receiver.got) == 3
    ids = {g["headers"]["X-Recordbank-Delivery"] for g in receiver.got}
    assert ids == {str(d.id)}  # the same delivery id on every retry: receivers dedupe on it


def test_an_endpoint_that_never_answers_ends_failed(engine: Engine, tmp_path: Path) -> None:
    webhooks.create_webhook(engine, "http://127.0.0.1:9/nothing-listens", ["job.failed"])
    with session_scope(engine) as s:
        webhooks.emit(s, "job.failed", {"job_id": 1})
    dispatcher = Dispatcher(engine, timeout=2, backoff_base=1, max_attempts=3)
    now = datetime.now(UTC)
    try:
        for step in range(3):
            assert dispatcher.send_due(now + timedelta(seconds=10 * step)) == 1
    finally:
        dispatcher.close()
    [d] = all_deliveries(engine)
    assert (d.status, d.attempts) == ("failed", 3) and d.last_error
    rows, total = deliveries(engine, status="failed")
    assert total == 1 and rows[0]["id"] == d.id


def test_bad_webhook_definitions_are_refused(engine: Engine) -> None:
    for url, events, threshold in [
        ("ftp://x/y", ["job.failed"], None), ("http:///nohost", ["job.failed"], None),
        ("http://x/" + "a" * 2001, ["job.failed"], None), ("http://x/y", [], None),
        ("http://x/y", ["job.exploded"], None), ("http://x/y", ["balance.low"], None),
        ("http://x/y", ["job.failed"], 10), ("http://x/y", ["balance.low"], 0),
    ]:
        with pytest.raises(webhooks.WebhookError):
            webhooks.create_webhook(engine, url, events, balance_threshold=threshold)
    assert webhooks.list_webhooks(engine) == []


def test_balance_low_fires_once_per_crossing(engine: Engine, receiver: Receiver) -> None:
    webhooks.create_webhook(engine, receiver.url, ["balance.low"], balance_threshold=100)
    webhooks._cache.clear()
    assert webhooks.balance_changed(engine, 1, before=150, after=120) == 0
    assert webhooks.balance_changed(engine, 1, before=120, after=99) == 1
    assert webhooks.balance_changed(engine, 1, before=99, after=50) == 0  # already below
    assert webhooks.balance_changed(engine, 1, before=50, after=100) == 0  # a top-up
    assert webhooks.balance_changed(engine, 1, before=100, after=0) == 1  # crossed again
    payloads = [d.payload["data"] for d in all_deliveries(engine)]
    assert payloads[0] == {"user_id": 1, "balance": 99, "previous_balance": 120,
                           "threshold": 100}


def test_job_outcomes_are_announced_with_the_outcome(runtime: Runtime, tmp_path: Path,
                                                     receiver: Receiver) -> None:
    engine = runtime.engine
    webhooks.create_webhook(engine, receiver.url, ["job.completed", "job.failed"])
    good = write_csv(tmp_path / "good.csv", generate_people(50, seed=1), HEADER)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    for path in (good, bad):
        checksum, size = file_checksum(path)
        queue.enqueue(engine, path=str(path), file_name=path.name, source="t",
                      checksum=checksum, size=size, options={}, origin="upload")
    worker = Worker(runtime, lease_seconds=5)
    while worker.run_once() is not None:
        pass
    events = [(d.event, d.payload["data"]["file_name"]) for d in all_deliveries(engine)]
    assert events == [("job.completed", "good.csv"), ("job.failed", "bad.csv")]
    completed = all_deliveries(engine)[0].payload["data"]
    assert completed["rows_read"] == 50 and completed["status"] == "succeeded"


def test_parallel_dispatchers_claim_each_due_delivery_once(engine: Engine) -> None:
    """The claim (db/claim.py): due, unleased, pending deliveries only, each to one claimer,
    oldest due first, with its attempt counted and a lease set."""
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        def add(n: int, **kw: object) -> None:
            s.add(WebhookDelivery(webhook_id=1, event="job.failed", payload={"n": n}, **kw))
        for n in range(30):
            add(n, next_attempt_at=now - timedelta(seconds=n))
        add(100, next_attempt_at=now + timedelta(hours=1))  # not due yet
        add(101, next_attempt_at=now, lease_until=now + timedelta(minutes=1))  # held
        add(102, next_attempt_at=now, status="delivered")
        add(103, next_attempt_at=now, lease_until=now - timedelta(seconds=1))  # lease over
    with session_scope(engine) as s:
        by_n = {d.payload["n"]: d.id for d in s.scalars(select(WebhookDelivery))}
    oldest = Dispatcher(engine)
    try:
        assert oldest.claim(now) == by_n[29]  # due longest first
    finally:
        oldest.close()
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all() -> None:
        dispatcher = Dispatcher(engine)
        try:
            while (got := dispatcher.claim(now)) is not None:
                with lock:
                    claimed.append(got)
        finally:
            dispatcher.close()

    threads = [threading.Thread(target=claim_all) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {by_n[n] for n in range(29)} | {by_n[103]}
    assert sorted(claimed) == sorted(expected)  # each once, nothing else
    rows = {d.id: d for d in all_deliveries(engine)}
    assert all(rows[i].attempts == 1 and rows[i].lease_until is not None for i in expected)
    assert rows[by_n[100]].attempts == rows[by_n[101]].attempts == 0


def test_the_claim_statement_locks_on_postgresql_only() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    from recordbank.db.claim import claim_statement

    stmt = claim_statement(WebhookDelivery.id, due=WebhookDelivery.status == "pending",
                           order_by=[WebhookDelivery.next_attempt_at, WebhookDelivery.id],
                           values={"attempts": WebhookDelivery.attempts + 1},
                           returning=[WebhookDelivery.id])
    pg = " ".join(str(stmt.compile(dialect=postgresql.dialect())).split())
    lite = " ".join(str(stmt.compile(dialect=sqlite.dialect())).split())
    for sql in (pg, lite):
        assert sql.startswith("UPDATE webhook_deliveries SET attempts=")
        assert "WHERE webhook_deliveries.id = (SELECT webhook_deliveries.id FROM " \
               "webhook_deliveries WHERE webhook_deliveries.status = " in sql
        assert "ORDER BY webhook_deliveries.next_attempt_at, webhook_deliveries.id" in sql
        assert "RETURNING" in sql
    assert "LIMIT %(param_1)s::INTEGER FOR UPDATE SKIP LOCKED)" in pg
    assert "FOR UPDATE" not in lite
