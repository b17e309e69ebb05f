"""The query a caller may ask: the POST body, the Datasette-style query string, and the check
against the master schema (field names, operators per type, value conversion)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError

from recordbank.query.model import (
    FILTERABLE_FIELDS,
    PUBLIC_FIELDS,
    SORTABLE_FIELDS,
    FilterOps,
    InvalidQuery,
    QueryRequest,
    SortKey,
    check_query,
)
from recordbank.query.params import query_from_params
from recordbank.schema import FIELDS


def conds(q: QueryRequest) -> list[tuple[str, str, object]]:
    return [(c.field, c.op, c.value) for c in check_query(q).conditions]


@contextmanager
def invalid(code: str) -> Iterator[pytest.ExceptionInfo[InvalidQuery]]:
    """pytest.raises(InvalidQuery) that also checks the code."""
    with pytest.raises(InvalidQuery) as info:
        yield info
    assert info.value.code == code, info.value.message


def test_field_sets_follow_the_schema() -> None:
    names = [f.name for f in FIELDS]
    assert "record_hash" in names and "record_hash" not in PUBLIC_FIELDS
    assert list(PUBLIC_FIELDS) == [n for n in names if n != "record_hash"]
    assert "metadata" not in FILTERABLE_FIELDS and "validation_errors" in FILTERABLE_FIELDS
    assert "metadata" not in SORTABLE_FIELDS and "validation_errors" not in SORTABLE_FIELDS
    assert {"id", "country", "created_date", "status", "data_quality_score",
            "ingested_at", "source_row"} <= set(SORTABLE_FIELDS)


def test_body_filter_shapes_normalize_alike() -> None:
    q = QueryRequest.model_validate({"filters": {
        "country": "US", "status": ["active", "pending"],
        "created_date": {"gte": "2024-01-01", "lte": "2024-12-31"}}})
    assert conds(q) == [("country", "eq", "US"), ("status", "in", ["active", "pending"]),
                        ("created_date", "gte", "2024-01-01"),
                        ("created_date", "lte", "2024-12-31")]
    same = query_from_params([("country", "US"), ("status__in", "active,pending"),
                              ("created_date__gte", "2024-01-01"),
                              ("created_date__lte", "2024-12-31")])
    assert conds(same) == conds(q)


def test_query_string_forms() -> None:
    q = query_from_params([
        ("country", "US"), ("country", "GB"), ("status__nin", "inactive,unknown"),
        ("created_date__is_null", "false"), ("email__contains", "@x"),
        ("name__prefix", "Ann"), ("source_row__gt", "10"), ("data_quality_score__lte", "0.5"),
        ("_fields", "email,name"), ("_fields", "city"), ("_sort", "-created_date,name"),
        ("_limit", "7"), ("_offset", "3")])
    assert q.fields == ["email", "name", "city"]
    assert q.sort == ["-created_date", "name"]
    assert (q.limit, q.offset, q.cursor) == (7, 3, None)
    assert conds(q) == [
        ("country", "in", ["US", "GB"]), ("status", "nin", ["inactive", "unknown"]),
        ("created_date", "is_null", False), ("email", "contains", "@x"),
        ("name", "prefix", "Ann"), ("source_row", "gt", 10),
        ("data_quality_score", "lte", 0.5)]
    assert check_query(q).sort == [("created_date", True), ("name", False), ("id", False)]
    assert query_from_params([], default_limit=25).limit == 25
    assert query_from_params([("city__is_null", "TRUE")]).filters["city"] == FilterOps(
        is_null=True)


@pytest.mark.parametrize("items, fragment", [
    ([("_foo", "1")], "unknown parameter '_foo'"),
    ([("_limit", "0")], "limit"),
    ([("_limit", "1001")], "limit"),
    ([("_limit", "ten")], "_limit must be a whole number"),
    ([("_limit", "-1")], "_limit must be a whole number"),
    ([("_limit", "5"), ("_limit", "6")], "more than once"),
    ([("_offset", "1e3")], "_offset must be a whole number"),
    ([("_cursor", "a"), ("_cursor", "b")], "more than once"),
    ([("country__like", "US")], "unknown operator 'like'"),
    ([("country__", "US")], "unknown operator ''"),
    ([("__in", "x")], "unknown parameter '__in'"),
    ([("created_date__gte", "notadate")], "created_date"),
    ([("created_date__gte", "2024-02-30")], "is not a date"),
    ([("created_date__gte", "2024-1-1")], "is not a date"),
    ([("data_quality_score__gt", "abc")], "finite number"),
    ([("data_quality_score__gt", "nan")], "finite number"),
    ([("data_quality_score__gt", "1e39")], "finite number"),
    ([("source_row__gt", "-1")], "whole number"),
    ([("source_row__gt", str(2**64))], "whole number"),
    ([("source_row", "١٢")], "whole number"),  # int() would read Arabic-Indic digits
    ([("id", "not-a-uuid")], "UUID"),
    ([("id__gt", "00000000-0000-0000-0000-000000000000")], "does not apply"),
    ([("country__gte", "a"), ("country__gte", "b")], "more than once"),
    ([("status", "a"), ("status", "b"), ("status__in", "c")], "not both"),
    ([("status__in", "a,,b")], "empty item"),
    ([("status__in", "")], "empty item"),
    ([("created_date__is_null", "maybe")], "true or false"),
    ([("source_row__contains", "1")], "does not apply"),
    ([("validation_errors", "bad_email")], "does not apply"),
    ([("ingested_at__gte", "yesterday")], "date-time"),
    ([("_fields", "")], "empty item"),
    ([("_sort", "created_date,created_date")], "twice"),
])
def test_bad_query_strings_are_invalid_query(items: list[tuple[str, str]],
                                              fragment: str) -> None:
    with invalid("INVALID_QUERY") as info:
        query_from_params(items)
    assert fragment in info.value.message


@pytest.mark.parametrize("items, valid", [
    ([("colour", "red")], FILTERABLE_FIELDS),
    ([("metadata", "x")], FILTERABLE_FIELDS),
    ([("record_hash", "x")], FILTERABLE_FIELDS),
    ([("_fields", "email,colour")], PUBLIC_FIELDS),
    ([("_fields", "record_hash")], PUBLIC_FIELDS),
    ([("_sort", "-colour")], SORTABLE_FIELDS),
    ([("_sort", "metadata")], SORTABLE_FIELDS),
    ([("_sort", "validation_errors")], SORTABLE_FIELDS),
])
def test_unknown_fields_are_invalid_field_with_the_valid_list(
        items: list[tuple[str, str]], valid: tuple[str, ...]) -> None:
    with invalid("INVALID_FIELD") as info:
        query_from_params(items)
    assert info.value.valid == list(valid)
    assert all(name in info.value.message for name in valid)


@pytest.mark.parametrize("body", [
    {"limit": 0}, {"limit": 1001}, {"limit": "10"}, {"offset": -1}, {"bogus": 1},
    {"filters": {"country": {"like": "US"}}}, {"filters": {"country": {}}},
    {"filters": {"country": None}}, {"filters": {"country": True}},
    {"filters": {"status": []}}, {"filters": {"status": {"in": "active"}}},
    {"filters": {"status": ["x"] * 1001}}, {"filters": {"created_date": {"is_null": "yes"}}},
    {"fields": []}, {"fields": "email"}, {"sort": {"field": "id", "order": "up"}},
    {"sort": {"field": "id", "extra": 1}}, {"cursor": "x" * 70_000},
])
def test_malformed_bodies_fail_validation(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        QueryRequest.model_validate(body)
    as_invalid = InvalidQuery.from_validation_error(info.value)
    assert as_invalid.code == "INVALID_QUERY" and as_invalid.message


@pytest.mark.parametrize("body, message", [
    ({"filters": {"country": {"like": "US"}}}, "filters: Value error, unknown operator 'like' "
     "for 'country'; operators: eq, ne, in, nin, gt, gte, lt, lte, contains, prefix, is_null"),
    ({"filters": {"country": True}},
     "filters.country: a filter is a value, a list of values or {operator: value}"),
    ({"filters": {"status": {"in": "active"}}}, "filters.status.in: Input should be a valid list"),
    ({"filters": {"status": ["a", None]}}, "filters.status.1: expected a string or a number"),
    ({"filters": {"values": {"eq": [1]}}}, "filters.values.eq: expected a string or a number"),
    ({"sort": {"field": "id", "order": "up"}}, "sort.order: Input should be 'asc' or 'desc'"),
    ({"sort": ["id", 5]}, "sort.1: a sort key is 'field', '-field' or {field, order}"),
    ({"sort": 5}, "sort: sort is a sort key or a list of them"),
    ({"limit": 0, "bogus": 1}, "limit: Input should be greater than or equal to 1; "
     "bogus: Extra inputs are not permitted"),
])
def test_validation_messages_name_the_one_thing_wrong(body: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(ValidationError) as info:
        QueryRequest.model_validate(body)
    assert InvalidQuery.from_validation_error(info.value).message == message


@pytest.mark.parametrize("filters, fragment", [
    ({"created_date": {"gte": "notadate"}}, "is not a date"),
    ({"created_date": 20240101}, "is not a date"),
    ({"data_quality_score": {"gt": "abc"}}, "finite number"),
    ({"id": "123"}, "UUID"),
    ({"id": 5}, "UUID"),
    ({"country": 5}, "a string"),
    ({"country": {"eq": None}}, "use is_null"),
    ({"source_row": 1.5}, "whole number"),
    ({"source_row": -3}, "whole number"),
    ({"status": {"in": ["active", 3]}}, "a string"),
    ({"validation_errors": {"prefix": "x"}}, "does not apply"),
    ({"metadata": "x"}, "cannot filter"),
    ({"email": {"is_null": True, "contains": "\ud800"}}, "valid Unicode"),
    ({"name": "x" * 4097}, "4096 characters"),
    ({"ingested_at": {"gte": "2024-13-01T00:00:00"}}, "date-time"),
])
def test_bad_body_values_are_refused_by_the_check(filters: dict[str, object],
                                                  fragment: str) -> None:
    q = QueryRequest.model_validate({"filters": filters})
    with pytest.raises(InvalidQuery) as info:
        check_query(q)
    assert fragment in info.value.message


def test_values_are_converted_to_their_bound_form() -> None:
    q = QueryRequest.model_validate({"filters": {
        "id": "{12345678-1234-5678-1234-567812345678}",
        "source_row": {"gte": "5", "lt": 9},
        "data_quality_score": {"gt": 1, "lte": "0.75"},
        "ingested_at": {"gte": "2024-01-01T10:00:00+02:00", "lt": "2024-01-02"},
        "validation_errors": {"contains": "invalid_email"},
        "status": ["active", "active", "pending"],
    }})
    assert conds(q) == [
        ("id", "eq", "12345678-1234-5678-1234-567812345678"),
        ("source_row", "gte", 5), ("source_row", "lt", 9),
        ("data_quality_score", "gt", 1.0), ("data_quality_score", "lte", 0.75),
        ("ingested_at", "gte", "2024-01-01 08:00:00.000000"),
        ("ingested_at", "lt", "2024-01-02 00:00:00.000000"),
        ("validation_errors", "contains", "invalid_email"),
        ("status", "in", ["active", "pending"]),
    ]


def test_sort_specs() -> None:
    def sort(spec: object) -> list[tuple[str, bool]]:
        return check_query(QueryRequest.model_validate({"sort": spec})).sort

    assert sort(None) == [("created_date", True), ("id", True)]
    assert sort([]) == [("created_date", True), ("id", True)]
    assert sort("country") == [("country", False), ("id", False)]
    assert sort(["-country", {"field": "created_date"}]) == [
        ("country", True), ("created_date", False), ("id", False)]
    assert sort({"field": "data_quality_score", "order": "desc"}) == [
        ("data_quality_score", True), ("id", True)]
    assert sort(["-id", "name"]) == [("id", True), ("name", False)]  # id already there
    assert SortKey(field="x").order == "asc"
    with invalid("INVALID_QUERY"):
        sort(["name", "-name"])
    with invalid("INVALID_FIELD"):
        sort("--name")


def test_fields_are_checked_and_deduplicated() -> None:
    assert check_query(QueryRequest()).fields == list(PUBLIC_FIELDS)
    q = QueryRequest(fields=["email", "email", "metadata"])
    assert check_query(q).fields == ["email", "metadata"]
    with invalid("INVALID_FIELD"):
        check_query(QueryRequest(fields=["email", "EMAIL"]))


def test_openapi_schema_documents_the_body() -> None:
    schema = QueryRequest.model_json_schema(by_alias=True)
    props = schema["properties"]
    for name in ("filters", "fields", "sort", "limit", "offset", "cursor"):
        assert props[name].get("description"), name
    assert schema["additionalProperties"] is False
    ops = schema["$defs"]["FilterOps"]
    assert set(ops["properties"]) == {"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte",
                                      "contains", "prefix", "is_null"}
    assert ops["additionalProperties"] is False
    assert props["limit"]["maximum"] == 1000 and props["limit"]["minimum"] == 1
