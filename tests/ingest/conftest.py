"""Fixtures shared by the ingest tests: the relational DB's engine, a local S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine

from recordbank.config import Settings
from recordbank.db.session import get_engine

if TYPE_CHECKING:
    from s3kit import S3


@pytest.fixture
def engine(database_url: str) -> Engine:
    """The engine of the test's fresh DB, with the project's migrations applied."""
    return get_engine(Settings(database_url=database_url).resolved_database_url())


@pytest.fixture
def s3(free_port: int) -> Iterator[S3]:
    """A real S3-compatible HTTP server (moto's) on a free local port."""
    from s3kit import server  # moto loads only for the tests that use it

    with server(free_port) as s:
        yield s
