"""Compiling a checked query: SQL built only from whitelisted names, every value bound, NULL
dates last in both directions, keyset predicates, and signed cursors bound to their query."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from recordbank.query.compile import CompiledQuery, compile_query, compile_select
from recordbank.query.cursor import decode_cursor, encode_cursor
from recordbank.query.model import (
    PUBLIC_FIELDS,
    FilterOps,
    InvalidQuery,
    QueryRequest,
)
from recordbank.query.params import query_from_params

SECRET = "compile-test-secret"
CANONICAL = [("country", "US"), ("created_date__gte", "2024-01-01"),
             ("created_date__lte", "2024-12-31"), ("status__in", "active,pending"),
             ("_fields", "email,name,created_date"), ("_sort", "-created_date"),
             ("_limit", "1000")]


def compile_(q: QueryRequest | dict[str, Any], **kw: Any) -> CompiledQuery:
    if isinstance(q, dict):
        q = QueryRequest.model_validate(q)
    args = {"secret": SECRET, "max_offset": 10_000, "count_cap": 1_000_000, **kw}
    return compile_query(q, **args)


def identifiers(sql: str) -> set[str]:
    return set(re.findall(r"`([^`]*)`", sql))


def placeholders(sql: str) -> dict[str, str]:
    return dict(re.findall(r"\{(\w+):([^{}]+)\}", sql))


def test_the_canonical_query_reads_in_key_order() -> None:
    cq = compile_(query_from_params(CANONICAL))
    assert cq.sql == (
        "SELECT `email`, `name`, `created_date`, `id` FROM records WHERE `country` = "
        "{p0:String} AND `created_date` >= {p1:Date32} AND `created_date` <= {p2:Date32} "
        "AND `status` IN {p3:Array(String)} ORDER BY `created_date` DESC NULLS FIRST, "
        "`id` DESC LIMIT {limit:UInt64} OFFSET {offset:UInt64}")
    assert cq.parameters == {"p0": "US", "p1": "2024-01-01", "p2": "2024-12-31",
                             "p3": ["active", "pending"], "limit": 1001, "offset": 0}
    assert cq.count_sql == (
        "SELECT count() FROM (SELECT 1 FROM records WHERE `country` = {p0:String} AND "
        "`created_date` >= {p1:Date32} AND `created_date` <= {p2:Date32} AND `status` IN "
        "{p3:Array(String)} LIMIT {cap:UInt64})")
    assert cq.count_parameters == {"p0": "US", "p1": "2024-01-01", "p2": "2024-12-31",
                                   "p3": ["active", "pending"], "cap": 1_000_001}
    assert cq.fields == ["email", "name", "created_date"]
    assert cq.columns == ["email", "name", "created_date", "id"]
    assert cq.sort == [("created_date", True), ("id", True)]
    assert not cq.count_exact


@pytest.mark.parametrize("filters, order", [
    ({}, "`created_date` DESC NULLS LAST"),
    ({"created_date": {"ne": "2024-01-01"}}, "`created_date` DESC NULLS LAST"),
    ({"created_date": {"nin": ["2024-01-01"]}}, "`created_date` DESC NULLS LAST"),
    ({"created_date": {"is_null": True}}, "`created_date` DESC NULLS LAST"),
    ({"created_date": {"is_null": False}}, "`created_date` DESC NULLS FIRST"),
    ({"created_date": "2024-01-01"}, "`created_date` DESC NULLS FIRST"),
    ({"created_date": ["2024-01-01"]}, "`created_date` DESC NULLS FIRST"),
    ({"created_date": {"lt": "2024-01-01"}}, "`created_date` DESC NULLS FIRST"),
])
def test_nulls_sort_last_and_say_first_only_when_no_null_can_match(
        filters: dict[str, Any], order: str) -> None:
    assert f"ORDER BY {order}, `id` DESC LIMIT" in compile_({"filters": filters}).sql
    asc = compile_({"filters": filters, "sort": "created_date"}).sql
    assert "ORDER BY `created_date` ASC NULLS LAST, `id` ASC LIMIT" in asc


@pytest.mark.parametrize("filters, where, params", [
    ({"email": {"ne": "a"}}, "`email` != {p0:String}", ["a"]),
    ({"email": {"nin": ["a", "b"]}}, "`email` NOT IN {p0:Array(String)}", [["a", "b"]]),
    ({"email": {"gt": "a", "lte": "b"}}, "`email` > {p0:String} AND `email` <= {p1:String}",
     ["a", "b"]),
    ({"name": {"contains": "nn"}}, "position(`name`, {p0:String}) > 0", ["nn"]),
    ({"name": {"prefix": "An"}}, "startsWith(`name`, {p0:String})", ["An"]),
    ({"phone": {"is_null": True}}, "`phone` = ''", []),
    ({"phone": {"is_null": False}}, "`phone` != ''", []),
    ({"created_date": {"is_null": True}}, "`created_date` IS NULL", []),
    ({"created_date": {"ne": "2024-02-29"}},
     "(`created_date` IS NULL OR `created_date` != {p0:Date32})", ["2024-02-29"]),
    ({"created_date": {"nin": ["2024-02-29"]}},
     "(`created_date` IS NULL OR `created_date` NOT IN {p0:Array(Date32)})", [["2024-02-29"]]),
    ({"id": "12345678-1234-5678-1234-567812345678"}, "`id` = {p0:UUID}",
     ["12345678-1234-5678-1234-567812345678"]),
    ({"source_row": {"gte": 3}}, "`source_row` >= {p0:UInt64}", [3]),
    ({"data_quality_score": {"lt": 0.5}}, "`data_quality_score` < {p0:Float32}", [0.5]),
    ({"data_quality_score": [0.5, 1]}, "`data_quality_score` IN {p0:Array(Float32)}",
     [[0.5, 1.0]]),
    ({"ingested_at": {"gte": "2024-01-01T00:00:00Z"}},
     "`ingested_at` >= {p0:DateTime64(6, 'UTC')}", ["2024-01-01 00:00:00.000000"]),
    ({"validation_errors": {"contains": "invalid_email"}},
     "has(`validation_errors`, {p0:String})", ["invalid_email"]),
])
def test_each_operator_compiles_to_a_bound_predicate(
        filters: dict[str, Any], where: str, params: list[Any]) -> None:
    cq = compile_({"filters": filters, "fields": ["id"]})
    assert f" WHERE {where} ORDER BY " in cq.sql
    assert [v for k, v in cq.parameters.items() if k.startswith("p")] == params


def test_values_never_reach_the_sql_text() -> None:
    hostile = "x'); DROP TABLE records; --"
    cq = compile_({"filters": {"name": hostile, "city": {"in": [hostile, "`"]},
                               "email": {"contains": hostile, "prefix": hostile}}})
    assert "DROP" not in cq.sql and "DROP" not in cq.count_sql
    assert identifiers(cq.sql) <= set(PUBLIC_FIELDS)
    assert set(placeholders(cq.sql)) == set(cq.parameters)
    assert set(placeholders(cq.count_sql)) == set(cq.count_parameters)


def test_default_order_and_plain_count_without_filters() -> None:
    cq = compile_(QueryRequest())
    assert cq.sql.endswith("ORDER BY `created_date` DESC NULLS LAST, `id` DESC "
                           "LIMIT {limit:UInt64} OFFSET {offset:UInt64}")
    assert " WHERE " not in cq.sql
    assert cq.count_sql == "SELECT count() FROM records" and cq.count_parameters == {}
    assert cq.count_exact
    assert cq.fields == list(PUBLIC_FIELDS)


def test_sort_keys_missing_from_fields_are_selected_after_them() -> None:
    cq = compile_({"fields": ["email"], "sort": ["-country", "source_row"]})
    assert cq.fields == ["email"]
    assert cq.columns == ["email", "country", "source_row", "id"]
    assert cq.sort == [("country", True), ("source_row", False), ("id", False)]


def test_offset_limits() -> None:
    assert compile_({"offset": 500}, max_offset=500).parameters["offset"] == 500
    with pytest.raises(InvalidQuery, match="offset is limited to 500"):
        compile_({"offset": 501}, max_offset=500)
    cq = compile_(QueryRequest())
    token = encode_cursor(["2024-01-01", "12345678-1234-5678-1234-567812345678"],
                          cq.fingerprint, SECRET)
    with pytest.raises(InvalidQuery, match="either cursor or offset"):
        compile_({"offset": 1, "cursor": token})


def keyset(sort: Any, values: list[Any], filters: dict[str, Any] | None = None) -> str:
    q = QueryRequest.model_validate({"sort": sort, "filters": filters or {}})
    fp = compile_(q).fingerprint
    cq = compile_(q.model_copy(update={"cursor": encode_cursor(values, fp, SECRET)}))
    where = cq.sql.split(" WHERE ", 1)[1].split(" ORDER BY ")[0]
    bound = {k: v for k, v in cq.parameters.items() if k.startswith("p")}
    return re.sub(r"\{(p\d+):[^}]+\}", lambda m: repr(bound[m.group(1)]), where)


UID = "12345678-1234-5678-1234-567812345678"


def test_keyset_predicates_cross_the_null_boundary() -> None:
    assert keyset("-created_date", ["2024-05-01", UID]) == (
        "(((`created_date` < '2024-05-01' OR `created_date` IS NULL)) OR "
        f"(`created_date` = '2024-05-01' AND `id` < '{UID}'))")
    assert keyset("created_date", ["2024-05-01", UID]) == (
        "(((`created_date` > '2024-05-01' OR `created_date` IS NULL)) OR "
        f"(`created_date` = '2024-05-01' AND `id` > '{UID}'))")
    # Past the last date: only NULL dates with a later id remain, in either direction.
    for sort, op in (("-created_date", "<"), ("created_date", ">")):
        assert keyset(sort, [None, UID]) == f"((`created_date` IS NULL AND `id` {op} '{UID}'))"
    assert keyset(["status", "-source_row"], ["active", 7, UID]) == (
        "((`status` > 'active') OR (`status` = 'active' AND `source_row` < 7) OR "
        f"(`status` = 'active' AND `source_row` = 7 AND `id` < '{UID}'))")
    assert keyset("-id", [UID]) == f"((`id` < '{UID}'))"
    with_filter = keyset("-created_date", ["2024-05-01", UID], {"country": "US"})
    assert with_filter.startswith("`country` = 'US' AND (((`created_date` < '2024-05-01'")


def test_count_ignores_the_cursor() -> None:
    q = QueryRequest.model_validate({"filters": {"country": "US"}})
    fp = compile_(q).fingerprint
    cq = compile_(q.model_copy(update={"cursor": encode_cursor(["2024-01-01", UID], fp,
                                                                SECRET)}))
    assert "`id`" not in cq.count_sql and cq.count_parameters == {"p0": "US", "cap": 1_000_001}


def test_cursor_round_trip_and_binding_to_its_query() -> None:
    token = encode_cursor(["2024-01-01", UID], "f" * 32, SECRET)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert decode_cursor(token, "f" * 32, SECRET, 2) == ["2024-01-01", UID]
    with pytest.raises(InvalidQuery, match="cursor does not belong to this query"):
        decode_cursor(token, "e" * 32, SECRET, 2)
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        decode_cursor(token, "f" * 32, "another-secret", 2)
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        decode_cursor(token, "f" * 32, SECRET, 3)


def _tamper(token: str) -> list[str]:
    body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["k"][0] = "2999-01-01"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    return [f"{forged}.{sig}", f"{body}.{flipped}", f"{body}.", f".{sig}", body, sig,
            f"{body}.{sig}.{sig}", f"{body}={sig}", token + "A", "A" + token,
            token.replace(".", "%2E"), "", " ", "\x00", "'; DROP TABLE records; --",
            "é" * 10, "a" * 5000, body + "." + "A" * 70_000, f"{body}.{sig}\n"]


def test_tampered_and_foreign_cursors_are_refused() -> None:
    q = query_from_params(CANONICAL)
    cq = compile_(q)
    token = encode_cursor(["2024-06-01", UID], cq.fingerprint, SECRET)
    assert compile_(q.model_copy(update={"cursor": token})).sql != cq.sql
    # fields and limit may change between pages; filters and sort may not
    same = query_from_params([*CANONICAL[:-3], ("_fields", "id"), ("_limit", "10"),
                              ("_sort", "-created_date"), ("_cursor", token)])
    compile_(same)
    for changed in ({"filters": {"country": "GB"}}, {"sort": "created_date"},
                    {"sort": ["-created_date", "name"]},
                    {"filters": {**q.filters, "email": FilterOps(contains="x")}}):
        foreign = q.model_copy(update={**changed, "cursor": token})
        with pytest.raises(InvalidQuery, match="cursor does not belong to this query"):
            compile_(foreign)
    for bad in _tamper(token):
        with pytest.raises(InvalidQuery) as info:
            compile_(q.model_copy(update={"cursor": bad}))
        assert info.value.code == "INVALID_QUERY"
        assert info.value.message == "invalid cursor", bad
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        compile_(q.model_copy(update={"cursor": token}), secret="rotated")


@pytest.mark.parametrize("values", [
    ["not a date", UID], ["2024-01-01", "not-a-uuid"], [20240101, UID], ["2024-01-01", None],
    [{"a": 1}, UID], [["2024-01-01"], UID], [True, UID],
])
def test_signed_cursors_with_bad_values_are_still_refused(values: list[Any]) -> None:
    q = QueryRequest()
    token = encode_cursor(values, compile_(q).fingerprint, SECRET)
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        compile_(q.model_copy(update={"cursor": token}))


def test_equivalent_queries_share_cursors() -> None:
    body = QueryRequest.model_validate({"filters": {"status": ["pending", "active"],
                                                    "country": {"eq": "US"}},
                                        "sort": [{"field": "created_date", "order": "desc"}]})
    params = query_from_params([("country", "US"), ("status__in", "active,pending"),
                                ("_sort", "-created_date")])
    assert compile_(body).fingerprint == compile_(params).fingerprint
    assert compile_(QueryRequest()).fingerprint == compile_(
        QueryRequest(sort="-created_date")).fingerprint


def test_compile_select_for_exports() -> None:
    q = query_from_params([*CANONICAL, ("_offset", "5")])
    sql, params, fields = compile_select(q, limit=None)
    assert fields == ["email", "name", "created_date"]
    assert sql.startswith("SELECT `email`, `name`, `created_date` FROM records WHERE ")
    assert sql.endswith("ORDER BY `created_date` DESC NULLS FIRST, `id` DESC")
    assert params == {"p0": "US", "p1": "2024-01-01", "p2": "2024-12-31",
                      "p3": ["active", "pending"]}
    sql, params, _ = compile_select(q, limit=50)
    assert sql.endswith(" LIMIT {limit:UInt64}") and params["limit"] == 50
    sql, params, fields = compile_select(QueryRequest(), limit=None)
    assert fields == list(PUBLIC_FIELDS) and params == {} and " WHERE " not in sql
    with pytest.raises(InvalidQuery):
        compile_select(QueryRequest(fields=["nope"]), limit=None)
