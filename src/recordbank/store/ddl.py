"""Versioned store DDL, applied once each, in order, at start-up (idempotent)."""

from __future__ import annotations

from importlib import resources

from recordbank.store.client import Store

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version String, applied_at DateTime DEFAULT now())
ENGINE = MergeTree ORDER BY version
"""


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("recordbank.store") / "ddl"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), (folder / name).read_text()) for name in names]


def apply_migrations(store: Store) -> list[str]:
    """Apply the DDL files not yet recorded; return the versions applied now."""
    store.command(_LEDGER)
    done = {row[0] for row in store.rows("SELECT version FROM schema_migrations")}
    applied = []
    for version, sql in migration_files():
        if version in done:
            continue
        for statement in _split(sql):
            store.command(statement)
        store.insert("schema_migrations", ["version"], [[version]])
        applied.append(version)
    return applied


def _split(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
