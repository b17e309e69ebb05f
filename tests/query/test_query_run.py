"""Queries against a real store, checked against the same query computed in Python over the
rows we inserted: every operator, sort directions, NULL dates across cursor pages (every page
walked, no row missing or repeated), offsets, totals and the count cap, record lookup, JSON
values, time limit and an unreachable store."""

from __future__ import annotations

import functools
import json
import random
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from recordbank.config import Settings
from recordbank.query.model import PUBLIC_FIELDS, InvalidQuery, QueryRequest, check_query
from recordbank.query.run import (
    Page,
    QueryTimeout,
    StoreUnavailable,
    get_record,
    run_query,
    run_sql,
    to_json_value,
)
from recordbank.schema import FIELDS
from recordbank.store.client import Store
from recordbank.store.ddl import apply_migrations

COLUMNS = [f.name for f in FIELDS]
N_ROWS = 2400
NAMES = ["Ann Lee", "ann lee", "Anna Berg", "Bob", "Bört Öz", "Chloé Martin", "Zoë", "李雷",
         "Mary-Ann O'Neil", "", "Élodie", "Annabel"]
CITIES = ["Springfield", "Zürich", "São Paulo", "東京", "", "Oslo", "springfield"]
ERRORS = ["invalid_email", "invalid_phone", "unknown_country"]


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def make_rows() -> list[dict[str, Any]]:
    rnd = random.Random(20240601)
    dates = sorted({date(2023, 1, 1) + timedelta(days=rnd.randrange(900)) for _ in range(40)})
    rows = []
    for i in range(N_ROWS):
        h = rnd.getrandbits(128).to_bytes(16, "big")
        rows.append({
            "id": UUID(bytes=h), "source": rnd.choice(["crm", "shop", "ümlaut-src"]),
            "source_file": f"f{i % 7}.csv",
            "source_row": 2**64 - 1 if i == 5 else i,
            "record_hash": h,
            "ingested_at": datetime(2024, 1, 1) + timedelta(milliseconds=rnd.randrange(10**9)),
            "job_id": rnd.randrange(1, 4), "user_id": str(rnd.randrange(10**6)),
            "email": "" if rnd.random() < 0.1 else
            f"user{i}@{rnd.choice(['a.example', 'b.example'])}",
            "name": rnd.choice(NAMES), "phone": f"+1415{i:07d}", "address": f"{i} Main St",
            "city": rnd.choice(CITIES), "country": rnd.choice(["US", "GB", "DE", "FR", ""]),
            "created_date": None if rnd.random() < 0.12 else rnd.choice(dates),
            "status": rnd.choice(["active", "pending", "inactive", "unknown"]),
            "metadata": {"row": str(i)} if i % 3 == 0 else {},
            "data_quality_score": f32(rnd.choice([0.0, 0.25, 0.5, 0.9, 1.0, rnd.random()])),
            "validation_errors": rnd.sample(ERRORS, rnd.randrange(3)),
        })
    return rows


ROWS = make_rows()
BY_ID = {str(r["id"]): r for r in ROWS}
A_DATE = str(next(r["created_date"] for r in ROWS if r["created_date"]))  # one rows really have
AN_EMAIL = next(r["email"] for r in ROWS if r["email"])


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("query_run"), secret_key="run-secret")


@pytest.fixture(scope="module")
def filled(store: Store) -> Store:
    apply_migrations(store)
    store.command("TRUNCATE TABLE records")
    data = [[(r["ingested_at"].replace(tzinfo=UTC) if c == "ingested_at" else r[c])
             for c in COLUMNS] for r in ROWS]
    store.insert("records", COLUMNS, data)
    return store


@pytest.fixture
def db(filled: Store) -> Store:
    """The filled store, checked to hold exactly our rows (other modules share it)."""
    assert filled.scalar("SELECT count() FROM records") == N_ROWS
    return filled


def test_the_store_holds_exactly_the_rows_we_reason_about(db: Store) -> None:
    stored = db.rows(f"SELECT {', '.join(COLUMNS)} FROM records")
    for raw in stored:
        got = dict(zip(COLUMNS, raw, strict=True))
        want = BY_ID[str(got["id"])]
        got["ingested_at"] = got["ingested_at"].replace(tzinfo=None)
        assert got == want


# ---- the reference: the documented semantics, in Python --------------------------------

def py_value(field: str, value: Any) -> Any:
    if field == "created_date":
        return date.fromisoformat(value)
    if field == "ingested_at":
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    if field == "id":
        return UUID(value)
    if field == "data_quality_score":
        return f32(float(value))
    return value


def matches(row: dict[str, Any], field: str, op: str, value: Any) -> bool:
    x = row[field]
    if op == "is_null":
        return (x is None or x == "") == value
    if op == "contains":
        return value in x
    if op == "prefix":
        return bool(x.startswith(value))
    if op in ("in", "nin"):
        hit = x is not None and x in [py_value(field, v) for v in value]
        return hit if op == "in" else not hit
    v = py_value(field, value)
    if op == "ne":
        return x is None or x != v
    if x is None:
        return False
    return {"eq": x == v, "gt": x > v, "gte": x >= v, "lt": x < v, "lte": x <= v}[op]


def sort_value(field: str, x: Any) -> Any:
    if isinstance(x, UUID):  # ClickHouse orders UUIDs by their low 64 bits, then the high
        return (x.int & (2**64 - 1), x.int >> 64)
    return x.encode() if isinstance(x, str) else x  # strings compare as bytes


def expected(filters: dict[str, Any], sort: list[tuple[str, bool]]) -> list[str]:
    def keep(row: dict[str, Any]) -> bool:
        for field, spec in filters.items():
            ops = spec if isinstance(spec, dict) else (
                {"in": spec} if isinstance(spec, list) else {"eq": spec})
            if not all(matches(row, field, op, v) for op, v in ops.items()):
                return False
        return True

    def cmp(a: dict[str, Any], b: dict[str, Any]) -> int:
        for field, desc in sort:
            x, y = a[field], b[field]
            if x == y:
                continue
            if x is None or y is None:  # NULLs last in both directions
                return 1 if x is None else -1
            kx, ky = sort_value(field, x), sort_value(field, y)
            if kx != ky:
                return (1 if kx > ky else -1) * (-1 if desc else 1)
        return 0

    return [str(r["id"]) for r in sorted(filter(keep, ROWS), key=functools.cmp_to_key(cmp))]


def sort_keys(sort: Any) -> list[tuple[str, bool]]:
    """(field, descending) with the id tiebreaker; the parsing is tested in test_query_model."""
    return check_query(QueryRequest.model_validate({"sort": sort})).sort


def walk(db: Store, settings: Settings, body: dict[str, Any],
         check_page: Callable[[Page], None] | None = None) -> list[str]:
    """Every page of a query through next_cursor; the ids in order."""
    ids: list[str] = []
    cursor = None
    for _ in range(N_ROWS + 2):
        page = run_query(db, QueryRequest.model_validate({**body, "cursor": cursor}), settings)
        ids += [r["id"] for r in page.rows]
        if check_page:
            check_page(page)
        cursor = page.next_cursor
        if cursor is None:
            return ids
        assert len(page.rows) == body.get("limit", 100)
    raise AssertionError("the cursor never ended")


OPERATOR_CASES: list[tuple[str, str, Any]] = [
    ("country", "eq", "US"), ("country", "ne", "US"), ("country", "in", ["US", "GB"]),
    ("country", "nin", ["US", "GB"]), ("country", "is_null", True),
    ("country", "is_null", False), ("country", "gt", "DE"), ("country", "prefix", "G"),
    ("name", "contains", "nn"), ("name", "contains", "ö"), ("name", "prefix", "Ann"),
    ("name", "gt", "Bob"), ("name", "lte", "Bob"), ("name", "eq", "李雷"),
    ("name", "eq", "Mary-Ann O'Neil"), ("name", "contains", ""), ("name", "eq", "ann LEE"),
    ("city", "eq", "Zürich"), ("city", "gte", "S"), ("city", "lt", "Z"),
    ("city", "in", ["東京", "São Paulo"]), ("email", "is_null", True),
    ("email", "contains", "@b.ex"), ("email", "nin", [AN_EMAIL]),
    ("source", "eq", "ümlaut-src"), ("status", "nin", ["inactive", "unknown"]),
    ("created_date", "eq", A_DATE), ("created_date", "ne", A_DATE),
    ("created_date", "gt", "2024-01-01"), ("created_date", "gte", "2024-01-01"),
    ("created_date", "lt", "2023-06-01"), ("created_date", "lte", "2023-06-01"),
    ("created_date", "is_null", True), ("created_date", "is_null", False),
    ("created_date", "nin", [A_DATE]), ("source_row", "gt", 1000),
    ("source_row", "lte", 17), ("source_row", "in", [0, 5, 99, 12345]),
    ("source_row", "eq", 2**64 - 1), ("source_row", "ne", 3), ("job_id", "eq", 2),
    ("data_quality_score", "eq", 0.9), ("data_quality_score", "gt", 0.5),
    ("data_quality_score", "lte", 0.25), ("data_quality_score", "in", [0.9, 1]),
    ("data_quality_score", "ne", 0.9), ("ingested_at", "gte", "2024-01-06T00:00:00Z"),
    ("ingested_at", "lt", "2024-01-03T02:00:00+02:00"),
    ("ingested_at", "gt", "2024-01-05 12:00:00.250"),
    ("validation_errors", "contains", "invalid_phone"),
    ("validation_errors", "contains", "nothing_like_this"),
]


@pytest.mark.parametrize("field, op, value", OPERATOR_CASES,
                         ids=[f"{f}-{o}-{i}" for i, (f, o, _) in enumerate(OPERATOR_CASES)])
def test_every_operator_matches_the_python_reference(
        db: Store, settings: Settings, field: str, op: str, value: Any) -> None:
    filters = {field: {op: value}}
    want = expected(filters, [("created_date", True), ("id", True)])
    totals: list[int] = []
    got = walk(db, settings, {"filters": filters, "fields": ["id"], "limit": 1000},
               lambda p: totals.append(p.total))
    assert got == want
    assert set(totals) == {len(want)}


def test_the_reference_is_not_trivial() -> None:
    """Only the cases meant to match all or nothing do (empty contains, case, unknown code)."""
    trivial = [(f, o, v) for f, o, v in OPERATOR_CASES
               if len(expected({f: {o: v}}, [("id", False)])) in (0, N_ROWS)]
    assert trivial == [("name", "contains", ""), ("name", "eq", "ann LEE"),
                       ("validation_errors", "contains", "nothing_like_this")]


def test_ids_and_several_operators_together(db: Store, settings: Settings) -> None:
    some = [str(r["id"]) for r in ROWS[10:15]]
    for filters in (
        {"id": some[0]}, {"id": {"in": [*some, str(UUID(int=1))]}},
        {"id": {"nin": some, "ne": str(ROWS[0]["id"])}, "country": "US"},
        {"country": "US", "created_date": {"gte": "2024-01-01", "lte": "2024-12-31"},
         "status": ["active", "pending"]},
        {"name": {"prefix": "Ann", "contains": "a", "ne": "Annabel"}, "city": {"is_null": False}},
        {"created_date": {"ne": "2024-01-01", "is_null": False}, "job_id": {"in": [1, 3]}},
    ):
        want = expected(filters, [("created_date", True), ("id", True)])
        assert walk(db, settings, {"filters": filters, "fields": ["id"], "limit": 1000}) == want


SORTS: list[Any] = [
    None, "created_date", "-created_date", ["-country", "created_date"],
    ["status", "-data_quality_score"], "-id", "id", "-ingested_at", ["name", "-source_row"],
    ["city", "-created_date"], [{"field": "created_date", "order": "desc"}, "name"],
    ["-job_id", "created_date", "-email"], "source_row",
]


@pytest.mark.parametrize("sort", SORTS, ids=[json.dumps(s) for s in SORTS])
def test_sorts_walked_page_by_page_match_the_full_ordering(
        db: Store, settings: Settings, sort: Any) -> None:
    keys = sort_keys(sort)
    fields = ["id", *[k for k, _ in keys if k != "id"]]
    got = walk(db, settings, {"sort": sort, "fields": fields, "limit": 97})
    assert got == expected({}, keys)
    assert len(set(got)) == N_ROWS


@pytest.mark.parametrize("filters, sort", [
    ({"created_date": {"gte": "2023-06-01"}}, "-created_date"),  # the NULLS FIRST form
    ({"created_date": {"is_null": True}}, "created_date"),
    ({"created_date": {"is_null": True}}, "-created_date"),
    ({"created_date": {"ne": "2023-06-01"}}, ["-created_date"]),
    ({"country": "FR", "job_id": 1, "status": "active"}, "-created_date"),
    ({"country": "FR", "job_id": 1, "status": "active"}, "created_date"),
])
def test_cursor_pages_one_row_at_a_time_across_the_null_boundary(
        db: Store, settings: Settings, filters: dict[str, Any], sort: Any) -> None:
    want = expected(filters, sort_keys(sort))
    small = len(want) <= 60
    got = walk(db, settings, {"filters": filters, "sort": sort, "fields": ["id"],
                              "limit": 1 if small else 53})
    assert got == want
    if filters.get("country") == "FR":  # the walk crossed from dates into NULLs
        dated = [BY_ID[i]["created_date"] is not None for i in got]
        assert True in dated and False in dated


def test_offsets_are_slices_of_the_order(db: Store, settings: Settings) -> None:
    want = expected({"status": "active"}, [("created_date", True), ("id", True)])
    for offset in (0, 1, 99, 400, len(want) - 3, len(want), len(want) + 10):
        page = run_query(db, QueryRequest.model_validate(
            {"filters": {"status": "active"}, "fields": ["id"], "limit": 50,
             "offset": offset}), settings)
        assert [r["id"] for r in page.rows] == want[offset:offset + 50]
        assert (page.next_cursor is not None) == (offset + 50 < len(want))
    limited = settings.model_copy(update={"max_offset": 10})
    with pytest.raises(InvalidQuery, match="offset is limited to 10"):
        run_query(db, QueryRequest(offset=11), limited)


def test_a_cursor_continues_after_an_offset_page_and_with_other_fields_or_limit(
        db: Store, settings: Settings) -> None:
    want = expected({}, [("name", False), ("id", False)])
    first = run_query(db, QueryRequest(sort="name", fields=["id"], limit=10, offset=20),
                      settings)
    second = run_query(db, QueryRequest(sort="name", fields=["email", "id"], limit=15,
                                        cursor=first.next_cursor), settings)
    assert [r["id"] for r in first.rows + second.rows] == want[20:45]
    assert list(second.rows[0]) == ["email", "id"]


def test_totals_exact_then_capped(db: Store, settings: Settings) -> None:
    capped = settings.model_copy(update={"count_cap": 50})
    us = len(expected({"country": "US"}, [("id", False)]))
    page = run_query(db, QueryRequest(filters={"country": "US"}, limit=5), capped)
    assert (page.total, page.total_approximate) == (50, True) and us > 50
    page = run_query(db, QueryRequest(filters={"country": "US"}, limit=5), settings)
    assert (page.total, page.total_approximate) == (us, False)
    few = {"source_row": {"lt": 51}}  # 0..50 but row 5, whose source_row is 2^64-1
    page = run_query(db, QueryRequest.model_validate({"filters": few}), capped)
    assert (page.total, page.total_approximate) == (50, False)  # exactly the cap is exact
    page = run_query(db, QueryRequest(limit=3), capped)  # no filters: plain count(), exact
    assert (page.total, page.total_approximate) == (N_ROWS, False)
    page = run_query(db, QueryRequest(filters={"country": "XX"}), settings)
    assert (page.rows, page.total, page.next_cursor) == ([], 0, None)


def test_last_page_has_no_cursor(db: Store, settings: Settings) -> None:
    filters = {"source_row": {"lt": 31}}  # 30 rows: row 5's source_row is 2^64-1
    exact = run_query(db, QueryRequest.model_validate({"filters": filters, "limit": 30}),
                      settings)
    assert len(exact.rows) == 30 and exact.next_cursor is None
    short = run_query(db, QueryRequest.model_validate({"filters": filters, "limit": 29}),
                      settings)
    assert short.next_cursor is not None
    rest = run_query(db, QueryRequest.model_validate(
        {"filters": filters, "limit": 29, "cursor": short.next_cursor}), settings)
    assert len(rest.rows) == 1 and rest.next_cursor is None
    assert rest.query_ms >= 0


def test_cursors_from_other_queries_or_secrets_are_refused(
        db: Store, settings: Settings) -> None:
    page = run_query(db, QueryRequest(filters={"country": "US"}, limit=5), settings)
    assert page.next_cursor
    with pytest.raises(InvalidQuery, match="cursor does not belong to this query"):
        run_query(db, QueryRequest(filters={"country": "GB"}, cursor=page.next_cursor),
                  settings)
    with pytest.raises(InvalidQuery, match="cursor does not belong to this query"):
        run_query(db, QueryRequest(filters={"country": "US"}, sort="created_date",
                                   cursor=page.next_cursor), settings)
    other = settings.model_copy(update={"secret_key": "another-secret"})
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        run_query(db, QueryRequest(filters={"country": "US"}, cursor=page.next_cursor), other)


def test_rows_are_json_values(db: Store, settings: Settings) -> None:
    row = next(r for r in ROWS if r["created_date"] and r["metadata"] and r["validation_errors"]
               and r["data_quality_score"] == f32(0.9))
    page = run_query(db, QueryRequest(filters={"id": str(row["id"])}), settings)
    (got,) = page.rows
    assert list(got) == list(PUBLIC_FIELDS)
    assert got["id"] == str(row["id"]) and got["created_date"] == row["created_date"].isoformat()
    ms = row["ingested_at"].isoformat(timespec="milliseconds")
    assert got["ingested_at"] == ms + "Z"
    assert got["data_quality_score"] == 0.9 and got["metadata"] == row["metadata"]
    assert got["validation_errors"] == row["validation_errors"]
    assert got["source_row"] == row["source_row"]
    json.dumps(got, allow_nan=False)
    again = run_query(db, QueryRequest(filters={"data_quality_score": got[
        "data_quality_score"], "id": got["id"]}), settings)
    assert again.total == 1  # a shown score filters back to its own row


def test_to_json_value() -> None:
    uid = UUID(int=7)
    assert to_json_value(uid) == str(uid)
    assert to_json_value(date(2024, 2, 29)) == "2024-02-29"
    assert to_json_value(datetime(2024, 1, 2, 3, 4, 5, 678900)) == "2024-01-02T03:04:05.678Z"
    aware = datetime(2024, 1, 2, 5, 4, 5, tzinfo=UTC).astimezone()
    assert to_json_value(aware) == "2024-01-02T05:04:05.000Z"
    assert to_json_value({"a": [b"\x00\xff", None]}) == {"a": ["00ff", None]}
    assert to_json_value(float("nan")) is None and to_json_value(1.5) == 1.5
    value = {"k": [uid, date(2024, 1, 1)], "t": (1, "x")}
    assert to_json_value(to_json_value(value)) == to_json_value(value)


def test_get_record(db: Store, settings: Settings) -> None:
    row = ROWS[42]
    got = get_record(db, str(row["id"]), None, settings)
    assert got is not None and list(got) == list(PUBLIC_FIELDS)
    assert got["email"] == row["email"] and got["id"] == str(row["id"])
    assert get_record(db, str(row["id"]).upper(), ["email", "id"], settings) == {
        "email": row["email"], "id": str(row["id"])}
    assert get_record(db, str(UUID(int=12345)), None, settings) is None
    for bad in ("nope", "", "1234", str(row["id"]) + "0", "'; DROP TABLE records; --",
                "x" * 10_000):
        with pytest.raises(InvalidQuery) as info:
            get_record(db, bad, None, settings)
        assert info.value.code == "INVALID_QUERY"
    with pytest.raises(InvalidQuery) as info:
        get_record(db, str(row["id"]), ["email", "record_hash"], settings)
    assert info.value.code == "INVALID_FIELD"


def test_concurrent_queries_each_get_their_answer(db: Store, settings: Settings) -> None:
    countries = ("US", "GB", "DE", "FR")
    bodies = [{"filters": {"country": c}, "fields": ["id"], "limit": 1000} for c in countries]
    wants = [expected({"country": c}, [("created_date", True), ("id", True)])
             for c in countries]
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(3):
                assert walk(db, settings, bodies[i % 4]) == wants[i % 4]
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[0]


def test_a_query_over_the_time_limit_is_a_query_timeout(store: Store, tmp_path: Path) -> None:
    slow = "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0"
    for limit in (1, 0.5):
        with pytest.raises(QueryTimeout) as info:
            run_sql(store, slow, {}, Settings(data_dir=tmp_path, query_time_limit_seconds=limit))
        assert info.value.code == "QUERY_TIMEOUT" and f" {limit} s" in info.value.message


@pytest.fixture
def unreachable() -> Iterator[Store]:
    """A Store for a ClickHouse server that is not there (lazy: it fails on first use)."""
    store = Store("http://127.0.0.1:9", lazy=True)
    yield store
    store.close()


def test_an_unreachable_store_is_store_unavailable(unreachable: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="s")
    with pytest.raises(StoreUnavailable) as info:
        run_query(unreachable, QueryRequest(), settings)
    assert info.value.code == "STORE_UNAVAILABLE"
    with pytest.raises(StoreUnavailable):
        get_record(unreachable, str(UUID(int=1)), None, settings)
    with pytest.raises(InvalidQuery):  # a bad query is reported before the store is needed
        run_query(unreachable, QueryRequest(fields=["nope"]), settings)
