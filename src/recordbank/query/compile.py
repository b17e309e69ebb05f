"""A checked query as ClickHouse SQL: names from the schema whitelist, every value bound.

Column names come only from recordbank.schema (checked in model.py) and are backquoted; every
caller value, cursor value, limit and offset is a server-side `{pN:Type}` parameter.

Order: NULL created_date sorts last in both directions. `records` is ORDER BY (country,
created_date, id) and its NULLs sit after the dates, so reading it backwards yields DESC NULLS
FIRST; when the filters already exclude NULL dates the query says NULLS FIRST (same rows, same
order) so ClickHouse can read in reverse key order instead of sorting the whole range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from recordbank.query.cursor import decode_cursor, fingerprint
from recordbank.query.model import (
    KIND,
    NULLABLE_FIELDS,
    Condition,
    InvalidQuery,
    QueryRequest,
    check_query,
    convert_value,
)
from recordbank.store.client import quote_ident

TABLE = "records"
PARAM_TYPE = {"string": "String", "array": "String", "uuid": "UUID", "uint": "UInt64",
              "float": "Float32", "date": "Date32", "datetime": "DateTime64(6, 'UTC')"}
_COMPARE = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_EXCLUDES_NULL = ("eq", "in", "gt", "gte", "lt", "lte")


@dataclass
class CompiledQuery:
    sql: str  # the page: limit + 1 rows, so the caller knows whether another page exists
    count_sql: str
    parameters: dict[str, Any]
    fields: list[str]  # returned, in order
    sort: list[tuple[str, bool]]  # (field, descending), id last
    count_parameters: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)  # selected: fields, then sort keys
    limit: int = 100
    count_cap: int = 0
    count_exact: bool = False  # a plain count() with no filters: exact at any size
    fingerprint: str = ""


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, kind: str, value: Any, *, array: bool = False) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        ch_type = PARAM_TYPE[kind]
        return "{" + name + ":" + (f"Array({ch_type})" if array else ch_type) + "}"


def _condition(c: Condition, p: _Params) -> str:
    col, kind = quote_ident(c.field), KIND[c.field]
    nullable = c.field in NULLABLE_FIELDS
    if kind == "array":  # only `contains`
        return f"has({col}, {p.bind('string', c.value)})"
    if c.op == "is_null":
        if nullable:
            return f"{col} IS NULL" if c.value else f"{col} IS NOT NULL"
        return f"{col} = ''" if c.value else f"{col} != ''"
    if c.op == "contains":
        return f"position({col}, {p.bind('string', c.value)}) > 0"
    if c.op == "prefix":
        return f"startsWith({col}, {p.bind('string', c.value)})"
    if c.op in ("in", "nin"):
        expr = f"{col} {'IN' if c.op == 'in' else 'NOT IN'} {p.bind(kind, c.value, array=True)}"
    else:
        expr = f"{col} {_COMPARE[c.op]} {p.bind(kind, c.value)}"
    if nullable and c.op in ("ne", "nin"):  # "not this value" includes rows with no value
        return f"({col} IS NULL OR {expr})"
    return expr


def _not_null(conditions: list[Condition]) -> set[str]:
    return {c.field for c in conditions if c.field in NULLABLE_FIELDS and (
        c.op in _EXCLUDES_NULL or (c.op == "is_null" and c.value is False))}


def _order_by(sort: list[tuple[str, bool]], not_null: set[str]) -> str:
    parts = []
    for name, desc in sort:
        part = f"{quote_ident(name)} {'DESC' if desc else 'ASC'}"
        if name in NULLABLE_FIELDS:
            part += " NULLS FIRST" if desc and name in not_null else " NULLS LAST"
        parts.append(part)
    return ", ".join(parts)


def _keyset(sort: list[tuple[str, bool]], values: list[Any], p: _Params) -> str:
    """Rows strictly after `values` in the order (NULLs last): an OR over sort-key prefixes."""
    terms: list[str] = []
    equal: list[str] = []
    for (name, desc), value in zip(sort, values, strict=True):
        col, kind = quote_ident(name), KIND[name]
        if value is not None:  # nothing sorts after NULL: NULLs are last
            after = f"{col} {'<' if desc else '>'} {p.bind(kind, value)}"
            if name in NULLABLE_FIELDS:
                after = f"({after} OR {col} IS NULL)"
            terms.append(" AND ".join([*equal, after]))
        equal.append(f"{col} IS NULL" if value is None else f"{col} = {p.bind(kind, value)}")
    return "(" + " OR ".join(f"({t})" for t in terms) + ")" if terms else "0"


def _cursor_params(sort: list[tuple[str, bool]], values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for (name, _), value in zip(sort, values, strict=True):
        if value is None and name in NULLABLE_FIELDS:
            out.append(None)
        elif KIND[name] == "string" and isinstance(value, str):
            out.append(value)  # stored strings may exceed the caller value limit
        else:
            try:
                out.append(convert_value(name, KIND[name], value))
            except InvalidQuery:
                raise InvalidQuery("INVALID_QUERY", "invalid cursor") from None
    return out


def cursor_values(sort: list[tuple[str, bool]], row: dict[str, Any]) -> list[Any]:
    """The JSON form of a row's sort values, as `_cursor_params` reads them back."""
    out: list[Any] = []
    for name, _ in sort:
        value = row[name]
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            value = value.isoformat(sep=" ", timespec="microseconds")
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, UUID):
            value = str(value)
        out.append(value)
    return out


def _where(parts: list[str]) -> str:
    return " WHERE " + " AND ".join(parts) if parts else ""


def compile_query(q: QueryRequest, *, secret: str, max_offset: int,
                  count_cap: int) -> CompiledQuery:
    """The page and count SQL of q; raises InvalidQuery. Touches no store."""
    checked = check_query(q)
    if q.offset > max_offset:
        raise InvalidQuery("INVALID_QUERY", f"offset is limited to {max_offset}; "
                           "page further with the cursor (next_cursor)")
    if q.cursor is not None and q.offset:
        raise InvalidQuery("INVALID_QUERY", "give either cursor or offset, not both")
    p = _Params()
    where = [_condition(c, p) for c in checked.conditions]
    count_where, count_params = list(where), dict(p.values)
    fp = fingerprint(checked.conditions, checked.sort)
    if q.cursor is not None:
        raw = decode_cursor(q.cursor, fp, secret, len(checked.sort))
        where.append(_keyset(checked.sort, _cursor_params(checked.sort, raw), p))
    columns = checked.fields + [n for n, _ in checked.sort if n not in checked.fields]
    parameters = {**p.values, "limit": q.limit + 1, "offset": q.offset}
    sql = (f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {TABLE}{_where(where)}"
           f" ORDER BY {_order_by(checked.sort, _not_null(checked.conditions))}"
           " LIMIT {limit:UInt64} OFFSET {offset:UInt64}")
    if checked.conditions:
        count_params["cap"] = count_cap + 1
        count_sql = (f"SELECT count() FROM (SELECT 1 FROM {TABLE}{_where(count_where)}"
                     " LIMIT {cap:UInt64})")
    else:
        count_sql = f"SELECT count() FROM {TABLE}"
    return CompiledQuery(sql=sql, count_sql=count_sql, parameters=parameters,
                         fields=checked.fields, sort=checked.sort,
                         count_parameters=count_params, columns=columns, limit=q.limit,
                         count_cap=count_cap, count_exact=not checked.conditions,
                         fingerprint=fp)


def compile_select(q: QueryRequest, *, limit: int | None) -> tuple[str, dict[str, Any],
                                                                  list[str]]:
    """q's filters and order without paging (its limit, offset and cursor are ignored), for
    exports; limit None means every matching row. Selects exactly the returned fields."""
    checked = check_query(q)
    p = _Params()
    where = [_condition(c, p) for c in checked.conditions]
    sql = (f"SELECT {', '.join(quote_ident(c) for c in checked.fields)} FROM {TABLE}"
           f"{_where(where)} ORDER BY {_order_by(checked.sort, _not_null(checked.conditions))}")
    if limit is not None:
        p.values["limit"] = limit
        sql += " LIMIT {limit:UInt64}"
    return sql, p.values, checked.fields
