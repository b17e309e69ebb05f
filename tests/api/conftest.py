"""An API on the test store and a fresh relational DB (SQLite, or PostgreSQL + Redis in CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apikit import Api, app_client

from recordbank.runtime import Runtime


@pytest.fixture
def api(runtime: Runtime, database_url: str) -> Iterator[Api]:
    with app_client(runtime, database_url) as a:
        yield a
