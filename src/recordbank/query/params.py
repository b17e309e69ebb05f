"""The Datasette-style query string of GET /v1/records and GET /v1/export, read into the same
QueryRequest as a POST body and checked the same way."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from recordbank.query.model import (
    _UINT,
    FILTERABLE_FIELDS,
    OPERATORS,
    InvalidQuery,
    QueryRequest,
    _unknown,
    check_query,
)

_CONTROLS = ("_fields", "_sort", "_limit", "_offset", "_cursor")
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def query_from_params(items: list[tuple[str, str]], *, default_limit: int = 100) -> QueryRequest:
    """GET /v1/records?country=US&created_date__gte=2024-01-01&status__in=a,b&_sort=-created_date

    `field=v` is eq (repeated: in); `field__op=v`; `__in`/`__nin` take comma-separated values
    (repeat `field=v` for values holding a comma); `__is_null=true|false`. Raises InvalidQuery.
    """
    control: dict[str, Any] = {}
    ops: dict[str, dict[str, list[str]]] = {}
    for key, value in items:
        if key.startswith("_"):
            if key not in _CONTROLS:
                raise InvalidQuery("INVALID_QUERY", f"unknown parameter {key[:60]!r}; "
                                   f"valid: {', '.join(_CONTROLS)} and field filters")
            if key in ("_fields", "_sort"):
                control.setdefault(key[1:], []).extend(_split(key, value))
            elif key[1:] in control:
                raise InvalidQuery("INVALID_QUERY", f"{key} is given more than once")
            else:
                control[key[1:]] = value
            continue
        name, _, op = key.rpartition("__")
        if not name:
            name, op = key, "eq"
        if name not in FILTERABLE_FIELDS:
            raise _unknown(name, "cannot filter on", FILTERABLE_FIELDS)
        if op not in OPERATORS:
            raise InvalidQuery("INVALID_QUERY", f"unknown operator {op[:60]!r} in {key[:80]!r}; "
                               f"operators: {', '.join(OPERATORS)}")
        seen = ops.setdefault(name, {}).setdefault(op, [])
        if seen and op not in ("eq", "in", "nin"):
            raise InvalidQuery("INVALID_QUERY", f"{key} is given more than once")
        seen.extend(_split(key, value) if op in ("in", "nin") else [value])
    body: dict[str, Any] = {"filters": {n: _filter_spec(n, o) for n, o in ops.items()},
                            "limit": default_limit}
    for name in ("limit", "offset"):
        if name in control:
            if not _UINT.fullmatch(control[name]):
                raise InvalidQuery("INVALID_QUERY", f"_{name} must be a whole number")
            body[name] = int(control[name])
    for name in ("fields", "sort", "cursor"):
        if name in control:
            body[name] = control[name]
    try:
        q = QueryRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidQuery.from_validation_error(exc) from None
    check_query(q)  # report field, operator and value errors now, not at run time
    return q


def _split(key: str, value: str) -> list[str]:
    parts = value.split(",")
    if any(p == "" for p in parts):
        raise InvalidQuery("INVALID_QUERY", f"{key}: empty item in a comma-separated list")
    return parts


def _filter_spec(name: str, given: dict[str, list[str]]) -> Any:
    spec: dict[str, Any] = {}
    for op, values in given.items():
        if op == "eq" and len(values) > 1:
            if "in" in given:
                raise InvalidQuery("INVALID_QUERY", f"repeat {name}= or use {name}__in, not both")
            spec["in"] = values
        elif op == "is_null":
            flag = values[0].lower()
            if flag not in _TRUE + _FALSE:
                raise InvalidQuery("INVALID_QUERY", f"{name}__is_null takes true or false")
            spec[op] = flag in _TRUE
        else:
            spec[op] = values if op in ("in", "nin") else values[0]
    return spec["eq"] if list(spec) == ["eq"] else spec
