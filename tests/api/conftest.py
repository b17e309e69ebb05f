"""An API on the test store and a fresh relational DB (SQLite, or PostgreSQL + Redis in CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apikit import Api, api_runtime
from fastapi.testclient import TestClient

from recordbank.api.app import create_app
from recordbank.runtime import Runtime


@pytest.fixture
def api(runtime: Runtime, database_url: str) -> Iterator[Api]:
    rt = api_runtime(runtime, database_url)
    app = create_app(runtime=rt)
    with TestClient(app) as client:
        yield Api(client, rt, app)
