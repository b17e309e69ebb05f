"""Claim the next due row of a work table (ingest jobs, webhook deliveries, HTTP sources) in
one statement, so that any number of workers in any processes never take the same row.

    UPDATE <table> SET ... WHERE id = (SELECT id FROM <table> WHERE <due>
                                       ORDER BY ... LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING ...

On PostgreSQL the inner SELECT locks the row it picks and skips rows other claimers hold, so
concurrent claims take different rows without waiting on each other. SQLite has no row locks
(SQLAlchemy leaves the FOR UPDATE out there): one statement is atomic by itself, as SQLite
runs one writer at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, Update, select, update
from sqlalchemy.orm import QueryableAttribute


def claim_statement(key: QueryableAttribute[int], *, due: ColumnElement[bool],
                    order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
                    values: Mapping[str, Any],
                    returning: Sequence[QueryableAttribute[Any]]) -> Update:
    """The claim as one UPDATE: `key` is the table's primary key column on its ORM class
    (e.g. `Job.id`); `values` are what the claim writes (plain values or SQL expressions
    of the row, e.g. `Job.attempts + 1`); `returning` the columns handed back."""
    pick = (select(key).where(due).order_by(*order_by).limit(1)
            .with_for_update(skip_locked=True).scalar_subquery())
    return update(key.class_).where(key == pick).values(dict(values)).returning(*returning)


def claim_next(engine: Engine, key: QueryableAttribute[int], *, due: ColumnElement[bool],
               order_by: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
               values: Mapping[str, Any],
               returning: Sequence[QueryableAttribute[Any]]) -> Row[Any] | None:
    """Run the claim in a transaction of its own; the claimed row's `returning` columns, or
    None when no row is due."""
    stmt = claim_statement(key, due=due, order_by=order_by, values=values,
                           returning=returning)
    with engine.begin() as conn:
        return conn.execute(stmt).first()
