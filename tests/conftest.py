"""Shared fixtures. chDB opens one store path per process, so the suite shares one store."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from recordbank.store.client import Store, close_all, open_store

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
if not CORPUS.exists():  # CI clones main beside shared/
    CORPUS = Path(os.environ.get("RECORDBANK_CORPUS", "../shared/corpus")).resolve()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The one embedded store of this test process."""
    path = tmp_path_factory.mktemp("store")
    s = open_store(f"chdb://{path}")
    yield s
    close_all()


DB_KINDS = ["sqlite", "postgresql"]


def _postgres_url() -> str | None:
    url = os.environ.get("RECORDBANK_DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


@pytest.fixture(params=DB_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh relational DB per test: SQLite file, or a throw-away schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'recordbank.db'}"
        return
    base = _postgres_url()
    if base is None:
        pytest.skip("PostgreSQL tests need RECORDBANK_DATABASE_URL=postgresql://… (CI sets it)")
    import uuid

    import sqlalchemy

    schema = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin_url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = sqlalchemy.create_engine(admin_url)
    try:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL at {base} is not reachable: {exc}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    from recordbank.db import session

    for url, engine in list(session._engines.items()):
        if schema in url:
            engine.dispose()
            del session._engines[url]
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def runtime(store: Store, database_url: str, tmp_path: Path) -> Iterator[object]:
    """An open system on the shared store (emptied) and a fresh relational DB."""
    from recordbank.config import Settings
    from recordbank.runtime import open_runtime

    settings = Settings(data_dir=tmp_path / "data", store_url=store.url,
                        database_url=database_url)
    rt = open_runtime(settings)
    rt.store.command("TRUNCATE TABLE IF EXISTS records")
    rt.store.command("TRUNCATE TABLE IF EXISTS quarantine")
    yield rt


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
