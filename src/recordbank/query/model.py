"""The query a caller may ask: the POST body, the Datasette-style query string, and the check
of both against the master schema (field names, operators per type, values converted in Python).

Values leave this module already converted to the form they are bound in (see `convert`), so
compile.py never looks at caller text and never formats a value into SQL.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
)

from recordbank.schema import FIELDS

MAX_LIMIT = 1000
MAX_IN_VALUES = 1000
MAX_VALUE_CHARS = 4096
MAX_CURSOR_CHARS = 65_536  # sort values are stored strings, which may be long

# Field kinds by ClickHouse type: what a value must look like and which operators make sense.
KIND_BY_TYPE: dict[str, str] = {
    "String": "string", "LowCardinality(String)": "string", "UUID": "uuid",
    "UInt64": "uint", "Float32": "float", "Nullable(Date32)": "date",
    "DateTime64(3, 'UTC')": "datetime", "Array(LowCardinality(String))": "array",
}
OPERATORS: tuple[str, ...] = (
    "eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "prefix", "is_null")
_ORDERED = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte")
# UUIDs have no useful order for callers (ClickHouse orders them by their low half), so only
# equality; `validation_errors` is an array: `contains` means has(). `is_null` on a string
# means empty: the store keeps a missing string as ''.
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "string": (*_ORDERED, "contains", "prefix", "is_null"),
    "uuid": ("eq", "ne", "in", "nin"),
    "uint": _ORDERED, "float": _ORDERED, "datetime": _ORDERED,
    "date": (*_ORDERED, "is_null"),
    "array": ("contains",),
}

PUBLIC_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.name != "record_hash")
KIND: dict[str, str] = {f.name: KIND_BY_TYPE[f.ch_type] for f in FIELDS
                        if f.name in PUBLIC_FIELDS and f.ch_type in KIND_BY_TYPE}
FILTERABLE_FIELDS: tuple[str, ...] = tuple(n for n in PUBLIC_FIELDS if n in KIND)
SORTABLE_FIELDS: tuple[str, ...] = tuple(n for n in FILTERABLE_FIELDS if KIND[n] != "array")
NULLABLE_FIELDS: frozenset[str] = frozenset(f.name for f in FIELDS
                                            if f.ch_type.startswith("Nullable("))
DEFAULT_SORT: tuple[tuple[str, bool], ...] = (("created_date", True),)


_TAGS = frozenset({"text", "number", "value", "values", "operators", "name", "key", "one",
                   "many"})


class InvalidQuery(Exception):
    """A query the caller must fix; `code` is INVALID_FIELD or INVALID_QUERY."""

    def __init__(self, code: str, message: str, valid: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.valid = valid

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> InvalidQuery:
        parts = []
        for err in exc.errors():
            loc = err["loc"]  # without the union tags of _by_shape (a filter's field stays)
            where = ".".join(str(p) for i, p in enumerate(loc) if p not in _TAGS
                             or (i == 1 and loc[0] == "filters"))
            parts.append(f"{where}: {err['msg']}" if where else err["msg"])
        return cls("INVALID_QUERY", "; ".join(parts))


def _by_shape(*shapes: tuple[str, type | tuple[type, ...]], message: str) -> Discriminator:
    """Pick a union member by the input's JSON shape, so errors name only that member."""
    def pick(value: Any) -> str | None:
        if isinstance(value, bool):  # never a member here: is_null is not in a union
            return None
        return next((tag for tag, types in shapes if isinstance(value, types)), None)

    return Discriminator(pick, custom_error_type="shape", custom_error_message=message)


Scalar = Annotated[
    Annotated[StrictStr, Tag("text")] | Annotated[StrictInt | StrictFloat, Tag("number")],
    _by_shape(("text", str), ("number", (int, float)), message="expected a string or a number")]
ValueList = Annotated[list[Scalar], Field(min_length=1, max_length=MAX_IN_VALUES)]


class FilterOps(BaseModel):
    """Operators on one field; several are ANDed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    eq: Scalar | None = Field(default=None, description="equal to")
    ne: Scalar | None = Field(default=None, description="not equal (rows with no value match)")
    in_: ValueList | None = Field(default=None, alias="in", description="one of these values")
    nin: ValueList | None = Field(default=None, description="none of these (as ne)")
    gt: Scalar | None = Field(default=None, description="greater than")
    gte: Scalar | None = Field(default=None, description="greater than or equal to")
    lt: Scalar | None = Field(default=None, description="less than")
    lte: Scalar | None = Field(default=None, description="less than or equal to")
    contains: StrictStr | None = Field(default=None, description=(
        "substring, case-sensitive; on validation_errors: has this code"))
    prefix: StrictStr | None = Field(default=None, description="starts with, case-sensitive")
    is_null: StrictBool | None = Field(default=None, description=(
        "true: value missing (NULL date, empty string); false: present"))

    def given(self) -> dict[str, Any]:
        """The operators the caller wrote, by their wire names."""
        return {("in" if name == "in_" else name): getattr(self, name)
                for name in self.model_fields_set}


class SortKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(description="a sortable field")
    order: Literal["asc", "desc"] = Field(default="asc", description="asc or desc")


FilterValue = Annotated[
    Annotated[Scalar, Tag("value")] | Annotated[ValueList, Tag("values")]
    | Annotated[FilterOps, Tag("operators")],
    _by_shape(("value", (str, int, float)), ("values", list), ("operators", (dict, FilterOps)),
              message="a filter is a value, a list of values or {operator: value}")]
SortSpec = Annotated[
    Annotated[StrictStr, Tag("name")] | Annotated[SortKey, Tag("key")],
    _by_shape(("name", str), ("key", (dict, SortKey)),
              message="a sort key is 'field', '-field' or {field, order}")]
SortValue = Annotated[
    Annotated[SortSpec, Tag("one")] | Annotated[list[SortSpec], Tag("many")],
    _by_shape(("many", list), ("one", (str, dict, SortKey)),
              message="sort is a sort key or a list of them")]


class QueryRequest(BaseModel):
    """POST /v1/query. GET /v1/records takes the same query in its query string."""

    model_config = ConfigDict(extra="forbid")
    filters: dict[str, FilterValue] = Field(default_factory=dict, description=(
        "field -> value (equal), [values] (one of), or {operator: value}; operators: "
        + ", ".join(OPERATORS) + ". Dates are YYYY-MM-DD, times ISO 8601 (UTC if no zone)."))
    fields: list[StrictStr] | None = Field(
        default=None, min_length=1, description="fields to return (default: all public ones)")
    sort: SortValue | None = Field(default=None, description=(
        "a field or a list: 'created_date' / '-created_date' or {field, order}; default "
        "-created_date; id is always the final tiebreaker; missing dates sort last"))
    limit: StrictInt = Field(default=100, ge=1, le=MAX_LIMIT, description="rows per page")
    offset: StrictInt = Field(default=0, ge=0, description=(
        "rows to skip (up to the server's max_offset; page further with cursor)"))
    cursor: str | None = Field(default=None, max_length=MAX_CURSOR_CHARS, description=(
        "next_cursor from the previous page of the same query (filters and sort)"))

    @field_validator("filters", mode="before")
    @classmethod
    def _known_operators(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, spec in value.items():
                if isinstance(spec, dict):
                    bad = [k for k in spec if k not in OPERATORS]
                    if bad:
                        raise ValueError(f"unknown operator {bad[0]!r} for {name!r}; "
                                         f"operators: {', '.join(OPERATORS)}")
                    if not spec:
                        raise ValueError(f"{name!r}: give at least one operator")
        return value


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # converted: str | int | float | bool | list of them


@dataclass(frozen=True)
class CheckedQuery:
    conditions: list[Condition]
    fields: list[str]
    sort: list[tuple[str, bool]]  # (field, descending); id always last


def _unknown(field: str, what: str, valid: tuple[str, ...]) -> InvalidQuery:
    shown = field if len(field) <= 60 else field[:60] + "…"
    return InvalidQuery("INVALID_FIELD", f"{what} {shown!r}; valid: {', '.join(valid)}",
                        list(valid))


def check_fields(fields: list[str] | None) -> list[str]:
    if fields is None:
        return list(PUBLIC_FIELDS)
    if not fields:
        raise InvalidQuery("INVALID_QUERY", "fields: name at least one field")
    for name in fields:
        if name not in PUBLIC_FIELDS:
            raise _unknown(name, "unknown field", PUBLIC_FIELDS)
    return list(dict.fromkeys(fields))


def check_sort(sort: str | SortKey | list[str | SortKey] | None) -> list[tuple[str, bool]]:
    specs = sort if isinstance(sort, list) else ([] if sort is None else [sort])
    keys: list[tuple[str, bool]] = []
    for spec in specs:
        if isinstance(spec, SortKey):
            name, desc = spec.field, spec.order == "desc"
        else:
            name, desc = (spec[1:], True) if spec.startswith("-") else (spec, False)
        if name not in SORTABLE_FIELDS:
            raise _unknown(name, "cannot sort by", SORTABLE_FIELDS)
        if any(name == k for k, _ in keys):
            raise InvalidQuery("INVALID_QUERY", f"sort names {name!r} twice")
        keys.append((name, desc))
    if not keys:
        keys = list(DEFAULT_SORT)
    if all(k != "id" for k, _ in keys):
        keys.append(("id", keys[-1][1]))  # the tiebreaker makes the order total
    return keys


def check_query(q: QueryRequest) -> CheckedQuery:
    """Check q against the schema; raises InvalidQuery. Touches no store."""
    conditions = []
    for name, spec in q.filters.items():
        if name not in FILTERABLE_FIELDS:
            raise _unknown(name, "cannot filter on", FILTERABLE_FIELDS)
        if isinstance(spec, FilterOps):
            given = spec.given()
            if not given:
                raise InvalidQuery("INVALID_QUERY", f"{name!r}: give at least one operator")
        else:
            given = {"in": spec} if isinstance(spec, list) else {"eq": spec}
        for op in OPERATORS:  # a fixed order keeps the SQL and the fingerprint stable
            if op in given:
                conditions.append(Condition(name, op, convert(name, op, given[op])))
    return CheckedQuery(conditions, check_fields(q.fields), check_sort(q.sort))


def convert(field: str, op: str, value: Any) -> Any:
    """The bound form of a caller's value for field/op, or InvalidQuery saying what is wrong."""
    kind = KIND[field]
    if op not in OPS_BY_KIND[kind]:
        raise InvalidQuery("INVALID_QUERY", f"operator {op!r} does not apply to {field!r}; "
                           f"use one of: {', '.join(OPS_BY_KIND[kind])}")
    if value is None:
        raise InvalidQuery("INVALID_QUERY", f"{field}.{op}: null is not a value; use is_null")
    if op == "is_null":
        if not isinstance(value, bool):
            raise InvalidQuery("INVALID_QUERY", f"{field}.is_null takes true or false")
        return value
    if op in ("in", "nin"):
        if not isinstance(value, list) or not value:
            raise InvalidQuery("INVALID_QUERY", f"{field}.{op} takes a non-empty list")
        if len(value) > MAX_IN_VALUES:
            raise InvalidQuery("INVALID_QUERY", f"{field}.{op}: at most {MAX_IN_VALUES} values")
        return list(dict.fromkeys(convert_value(field, kind, v) for v in value))
    if op in ("contains", "prefix"):
        kind = "string"
    return convert_value(field, kind, value)


_UINT = re.compile(r"[0-9]{1,20}")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FLOAT32_MAX = 3.4028234663852886e38


def convert_value(field: str, kind: str, value: Any) -> Any:
    def bad(expected: str) -> InvalidQuery:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:60] + "…"
        return InvalidQuery("INVALID_QUERY", f"{field}: {shown} is not {expected}")

    if isinstance(value, bool | list | dict):
        raise bad("a single value of the right type")
    if kind in ("string", "array"):
        if not isinstance(value, str):
            raise bad("a string")
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidQuery("INVALID_QUERY", f"{field}: values are limited to "
                               f"{MAX_VALUE_CHARS} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad("valid Unicode text") from None
        return value
    if kind == "uuid":
        if not isinstance(value, str) or len(value) > 45:
            raise bad("a UUID")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise bad("a UUID") from None
    if kind == "uint":
        if isinstance(value, str) and _UINT.fullmatch(value):
            value = int(value)
        if not isinstance(value, int) or not 0 <= value < 2**64:
            raise bad("a whole number from 0 to 2^64-1")
        return value
    if kind == "float":
        if isinstance(value, str) and _FLOAT.fullmatch(value):
            value = float(value)
        if not isinstance(value, int | float) or not math.isfinite(value) \
                or abs(value) > _FLOAT32_MAX:
            raise bad("a finite number")
        return float(value)
    if kind == "date":
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise bad("a date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise bad("a date (YYYY-MM-DD)") from None
    if kind == "datetime":
        return datetime_param(value, bad)
    raise bad("a filterable value")  # pragma: no cover - every kind is handled above


def datetime_param(value: Any, bad: Callable[[str], InvalidQuery]) -> str:
    """ISO 8601 (zone optional, UTC if none) -> the UTC text bound as DateTime64(6, 'UTC')."""
    if not isinstance(value, str) or len(value) > 40 or not value[:4].isdigit():
        raise bad("an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise bad("an ISO 8601 date-time") from None
    return parsed.isoformat(sep=" ", timespec="microseconds")

