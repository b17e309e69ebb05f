"""The store: DDL matches the master schema, migrations are idempotent, one process owns an
embedded store and another gets a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from recordbank.schema import FIELDS
from recordbank.store.client import Store
from recordbank.store.ddl import apply_migrations, migration_files


def test_records_table_matches_the_master_schema(store: Store) -> None:
    apply_migrations(store)
    columns = store.rows("SELECT name, type FROM system.columns WHERE database = "
                         "currentDatabase() AND table = 'records' ORDER BY position")
    assert [(f.name, f.ch_type) for f in FIELDS] == columns


def test_migrations_apply_once(store: Store) -> None:
    apply_migrations(store)
    assert apply_migrations(store) == []
    versions = [v for v, _ in migration_files()]
    applied = [r[0] for r in store.rows("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == versions


def test_a_second_process_is_told_the_store_is_busy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env["RECORDBANK_DATA_DIR"] = str(tmp_path / "data")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from recordbank.runtime import open_runtime\n"
         "open_runtime(); print('ready', flush=True); time.sleep(60)"],
        env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        data = tmp_path / "p.csv"
        data.write_text("name,email\nAnn Lee,ann@example.com\n")
        t = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "recordbank.cli", "ingest", "-q",
                                 str(data)], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 3
        assert "in use by another process" in " ".join(second.stderr.split())
        assert time.monotonic() - t < 60  # answered, did not hang
    finally:
        holder.kill()
        holder.wait()


def test_a_threads_store_connection_is_closed_when_the_thread_ends(store: Store) -> None:
    """The API's worker threads come and go; their connections must not pile up."""
    import gc
    import threading

    before = store.open_clients
    answers: list[int] = []

    def ask(n: int) -> None:
        answers.append(int(store.scalar("SELECT {n:UInt32} + 1", {"n": n})))

    for n in range(20):
        worker = threading.Thread(target=ask, args=(n,))
        worker.start()
        worker.join()
    gc.collect()
    assert sorted(answers) == list(range(1, 21))
    assert store.open_clients <= before + 1  # not one per thread that ever asked
    assert store.scalar("SELECT 41 + 1") == 42  # the other threads' connections still work
