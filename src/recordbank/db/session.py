"""Engine and sessions; the schema is brought to head with Alembic at start-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[str, Engine] = {}
POOL_SIZE = 40  # kept open: one per API worker thread
POOL_OVERFLOW = 10
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def get_engine(url: str) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            # The API runs sync work on anyio's 40 worker threads: a pool smaller than that
            # opens and closes an overflow connection per request under load (PRAGMAs on
            # SQLite, a backend fork on PostgreSQL).
            if url.startswith("sqlite"):
                in_memory = url in ("sqlite://", "sqlite:///:memory:")  # one shared conn
                sizes = {} if in_memory else {"pool_size": POOL_SIZE,
                                              "max_overflow": POOL_OVERFLOW}
                engine = create_engine(url, connect_args={"check_same_thread": False}, **sizes)
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE,
                                       max_overflow=POOL_OVERFLOW)
            upgrade(engine)
            _engines[url] = engine
        return engine


def upgrade(engine: Engine) -> None:
    folder = resources.files("recordbank.db") / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    maker = sessionmaker(engine, expire_on_commit=False)
    with maker() as session, session.begin():
        yield session
