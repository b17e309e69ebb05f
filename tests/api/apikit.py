"""Helpers for API tests: users with keys and credits, synthetic people in the store."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from recordbank.accounts.users import create_user, issue_key
from recordbank.billing import ledger
from recordbank.runtime import Runtime

# Rate limits high enough not to get in the way; rate-limit tests set their own per user.
TEST_RATE_LIMIT = "100000/second"


def redis_url_for(database_url: str) -> str:
    """PostgreSQL runs pair with Redis (the production set-up); SQLite with in-memory limits."""
    if database_url.startswith("postgresql"):
        return os.environ.get("RECORDBANK_REDIS_URL", "")
    return ""


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    app: FastAPI
    keys: dict[str, int] = field(default_factory=dict)

    def user(self, credits: int = 0, *, role: str = "user",
             scopes: tuple[str, ...] = ("query", "export"), rate_limit: str | None = None,
             expires_at: datetime | None = None) -> tuple[int, str]:
        """A new user with one key and `credits`; returns (user id, plaintext key)."""
        engine = self.runtime.engine
        u = create_user(engine, f"u{uuid.uuid4().hex[:10]}@example.com", role=role,
                        rate_limit=rate_limit)
        if credits:
            ledger.grant(engine, u.id, credits, reason="test")
        key = issue_key(engine, u.id, scopes=scopes, expires_at=expires_at)
        self.keys[key.plaintext] = key.id
        return u.id, key.plaintext

    def get(self, path: str, key: str | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if key:
            headers["X-API-Key"] = key
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, key: str | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if key:
            headers["X-API-Key"] = key
        return self.client.post(path, headers=headers, **kw)

    def delete(self, path: str, key: str | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if key:
            headers["X-API-Key"] = key
        return self.client.delete(path, headers=headers, **kw)

    def balance(self, user_id: int) -> int:
        return ledger.balance(self.runtime.engine, user_id)


def api_runtime(runtime: Runtime, database_url: str, **overrides: Any) -> Runtime:
    settings = runtime.settings.model_copy(update={
        "rate_limit": TEST_RATE_LIMIT, "redis_url": redis_url_for(database_url),
        "redis_prefix": f"rbtest:{uuid.uuid4().hex[:8]}",
        # No queue workers unless a test asks: tests drive job states through the queue itself.
        "ingest_workers": 0, **overrides})
    return Runtime(settings=settings, store=runtime.store, engine=runtime.engine)


def fill_people(runtime: Runtime, n: int = 3000) -> None:
    """n synthetic people: countries US/GB/DE, dates over 2022-2025 (some NULL), 3 statuses."""
    runtime.store.command(f"""
        INSERT INTO records (id, source, source_file, source_row, record_hash, ingested_at,
            job_id, user_id, email, name, phone, address, city, country, created_date, status,
            metadata, data_quality_score, validation_errors)
        SELECT reinterpretAsUUID(h), 'test', 'people.csv', number, h, now64(3), 1,
               toString(number), concat('person', toString(number), '@example.com'),
               concat('Person ', toString(number)),
               concat('+1415', leftPad(toString(number), 7, '0')), '1 Main St', 'Springfield',
               ['US', 'GB', 'DE'][number % 3 + 1],
               if(number % 17 = 0, NULL, toDate32('2022-01-01') + (number * 7919) % 1460),
               ['active', 'pending', 'inactive'][intDiv(number, 3) % 3 + 1],
               map('n', toString(number)), 0.9, []
        FROM (SELECT number, sipHash128('api-test', number) AS h FROM numbers({n}))""")


@contextmanager
def app_client(runtime: Runtime, database_url: str, **overrides: Any) -> Iterator[Api]:
    """The app (its lifespan run) on the test store and a fresh DB, with settings changed by
    `overrides`, reached through a TestClient."""
    from recordbank.api.app import create_app

    rt = api_runtime(runtime, database_url, **overrides)
    app = create_app(runtime=rt)
    with TestClient(app) as client:
        yield Api(client, rt, app)


def ingest_api(runtime: Runtime, database_url: str,
               **overrides: Any) -> AbstractContextManager[Api]:
    """The API with no queue workers: the ingest tests run jobs themselves."""
    return app_client(runtime, database_url, ingest_workers=0, **overrides)


@contextmanager
def live_server(runtime: Runtime, database_url: str, port: int,
                **overrides: Any) -> Iterator[tuple[str, Api]]:
    """The app on a real uvicorn server in a thread: requests arrive concurrently over TCP,
    and a real HTTP client reads streams. Yields the base URL and an Api for set-up."""
    from recordbank.api.app import create_app

    rt = api_runtime(runtime, database_url, **overrides)
    app = create_app(runtime=rt)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", Api(TestClient(app), rt, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
