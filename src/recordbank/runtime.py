"""Opening the system: the store (DDL applied) and the relational DB (migrated)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from recordbank.config import Settings, get_settings
from recordbank.db.session import get_engine
from recordbank.store.client import Store, open_store
from recordbank.store.ddl import apply_migrations


@dataclass
class Runtime:
    settings: Settings
    store: Store
    engine: Engine


_applied: set[str] = set()


def open_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_store_url()
    if url.startswith("chdb://"):
        from pathlib import Path
        from urllib.parse import urlparse

        Path(urlparse(url).path).mkdir(parents=True, exist_ok=True)
    store = open_store(url)
    if url not in _applied:
        apply_migrations(store)
        _applied.add(url)
    engine = get_engine(settings.resolved_database_url())
    return Runtime(settings=settings, store=store, engine=engine)
