"""Dedup + publish: move a job's clean rows into `records` and its rejects into `quarantine`.

A row is published only if it is the first of its record_hash in the file and the hash is not
stored yet. The existing-hash check reads only the ids of this job's rows through the `by_id`
projection, so its cost grows with the increment, not with the table. Publishing holds a lock
so two ingests running at once never store the same hash twice: a process lock for the
embedded store, plus a PostgreSQL advisory lock when the relational DB is PostgreSQL (workers on
several machines sharing one ClickHouse server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from recordbank.ingest.bulk import PUBLISH_INSERT
from recordbank.store.client import Store

_process_lock = threading.Lock()
_ADVISORY_KEY = 0x7265636F7264  # "record"


@contextmanager
def publish_lock(engine: Engine) -> Iterator[None]:
    with _process_lock:
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                conn.commit()


_RECORD_COLUMNS = (
    "id, source, source_file, source_row, record_hash, ingested_at, job_id, user_id, email, "
    "name, phone, address, city, country, created_date, status, metadata, data_quality_score, "
    "validation_errors"
)


# Rows per publish chunk: the sets a chunk builds (first occurrence per hash, the job's ids)
# grow with it, so chunking by hash range keeps memory flat in the file size.
CHUNK_ROWS = 2_000_000


def hash_ranges(rows: int, chunk_rows: int | None = None) -> list[tuple[int, int]]:
    """Ranges of the first hash byte (the clean table's `bucket`) of about chunk_rows each."""
    parts = max(1, min(256, -(-rows // (chunk_rows or CHUNK_ROWS))))
    bounds = [round(i * 256 / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]


def publish(store: Store, clean: str, *, rows: int, job_id: int, source: str,
            file_name: str) -> int:
    """Insert the job's new rows and its quarantined rows; return the number inserted.

    Rows with the same hash share a bucket, so deduplicating bucket range by bucket range is
    exact; each range reads only its own granules (the clean table is ordered by bucket).
    """
    params: dict[str, object] = {"job": job_id, "source": source, "file": file_name,
                                 "now": datetime.now(UTC).replace(tzinfo=None)}
    for lo, hi in hash_ranges(rows):
        _publish_range(store, clean, {**params, "lo": lo, "hi": hi})
    store.command(
        f"""
        INSERT INTO quarantine
            (job_id, source, source_file, source_row, reasons, raw, quarantined_at)
        SELECT {{job:UInt64}}, {{source:String}}, {{file:String}}, source_row, reasons, raw,
               {{now:DateTime64(3)}}
        FROM {clean} WHERE notEmpty(reasons)
        """,
        parameters=params,
    )
    return int(store.scalar("SELECT count() FROM records WHERE job_id = {job:UInt64}",
                            {"job": job_id}))


def _publish_range(store: Store, clean: str, params: dict[str, object]) -> None:
    mine = "bucket BETWEEN {lo:UInt8} AND {hi:UInt8} AND empty(reasons)"
    store.command(
        f"""
        INSERT INTO records ({_RECORD_COLUMNS})
        SELECT reinterpretAsUUID(record_hash), {{source:String}}, {{file:String}}, source_row,
               record_hash, {{now:DateTime64(3)}}, {{job:UInt64}}, user_id, email, name, phone,
               address, city, country, created_date, status, metadata, data_quality_score,
               validation_errors
        FROM {clean}
        WHERE {mine}
          AND (record_hash, source_row) IN (
                SELECT record_hash, min(source_row) FROM {clean}
                WHERE {mine} GROUP BY record_hash)
          AND reinterpretAsUUID(record_hash) NOT IN (
                SELECT id FROM records
                WHERE id IN (SELECT reinterpretAsUUID(record_hash) FROM {clean}
                             WHERE {mine}))
        """,
        parameters=params,
        settings=PUBLISH_INSERT,
    )


def unpublish(store: Store, job_id: int) -> None:
    """Remove whatever an interrupted run of this job stored, so a rerun starts clean."""
    for table in ("records", "quarantine"):
        if store.scalar(f"SELECT count() FROM {table} WHERE job_id = {{job:UInt64}}",
                        {"job": job_id}):
            # A mutation, not a lightweight DELETE: rows masked by a lightweight delete were
            # still found through the by_id projection by the next dedup check (reproduced by
            # tests/ingest/test_resume.py with a kill during publish).
            store.command(f"ALTER TABLE {table} DELETE WHERE job_id = {{job:UInt64}}",
                          parameters={"job": job_id}, settings={"mutations_sync": 2})
