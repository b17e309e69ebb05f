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


def publish(store: Store, clean: str, *, job_id: int, source: str, file_name: str) -> int:
    """Insert the job's new rows and its quarantined rows; return the number inserted."""
    params = {"job": job_id, "source": source, "file": file_name,
              "now": datetime.now(UTC).replace(tzinfo=None)}
    store.command(
        f"""
        INSERT INTO records ({_RECORD_COLUMNS})
        SELECT reinterpretAsUUID(record_hash), {{source:String}}, {{file:String}}, source_row,
               record_hash, {{now:DateTime64(3)}}, {{job:UInt64}}, user_id, email, name, phone,
               address, city, country, created_date, status, metadata, data_quality_score,
               validation_errors
        FROM {clean}
        WHERE empty(reasons)
          AND (record_hash, source_row) IN (
                SELECT record_hash, min(source_row) FROM {clean}
                WHERE empty(reasons) GROUP BY record_hash)
          AND reinterpretAsUUID(record_hash) NOT IN (
                SELECT id FROM records
                WHERE id IN (SELECT reinterpretAsUUID(record_hash) FROM {clean}
                             WHERE empty(reasons)))
        """,
        parameters=params,
        settings=PUBLISH_INSERT,
    )
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


def unpublish(store: Store, job_id: int) -> None:
    """Remove whatever an interrupted run of this job stored, so a rerun starts clean."""
    for table in ("records", "quarantine"):
        if store.scalar(f"SELECT count() FROM {table} WHERE job_id = {{job:UInt64}}",
                        {"job": job_id}):
            store.command(f"DELETE FROM {table} WHERE job_id = {{job:UInt64}}",
                          parameters={"job": job_id})
