"""Evaluate normalizer SQL on literal inputs through the session store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from recordbank.store.client import Store

Evaluate = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def evaluate(store: Store) -> Evaluate:
    """``evaluate(sql_exprs, v=[...], c=[...])``: one result row per input position, in order.

    Inputs arrive as Nullable(String) columns named after the keywords (all lists of one
    length), so a whole table of cases costs one query.
    """

    def run(exprs: str | Sequence[str], **columns: Sequence[str | None]) -> list[tuple[Any, ...]]:
        names = list(columns)
        assert len({len(v) for v in columns.values()}) == 1, "input columns differ in length"
        select = exprs if isinstance(exprs, str) else ", ".join(exprs)
        arrays = [f"{{{n}:Array(Nullable(String))}}" for n in names]
        zipped = f"arrayZip({', '.join(arrays)}, range(length({arrays[0]})))"
        cols = ", ".join(f"_t.{i + 1} AS {n}" for i, n in enumerate(names))
        sql = (f"SELECT {select} FROM (SELECT {cols}, _t.{len(names) + 1} AS _n "
               f"FROM (SELECT arrayJoin({zipped}) AS _t)) ORDER BY _n")
        return store.rows(sql, parameters={n: list(v) for n, v in columns.items()})

    return run
