"""Hostile text through every part of a query: field names, operators, values, sort keys,
cursors, paging parameters — by POST body and by query string. Each must be refused by
validation or matched literally as a value; after every test `records` holds exactly the rows
we inserted and no table appeared or went away."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from recordbank.config import Settings
from recordbank.query.cursor import encode_cursor
from recordbank.query.model import InvalidQuery, QueryRequest
from recordbank.query.params import query_from_params
from recordbank.query.run import get_record, run_query
from recordbank.schema import FIELDS
from recordbank.store.client import Store
from recordbank.store.ddl import apply_migrations

HOSTILE = [
    "'; DROP TABLE records; --", "country) OR 1=1 --", "' OR '1'='1", "`country`",
    "`; DROP TABLE records; --", "\\'; DROP TABLE records; --", "\\", "''", "\\N", "NULL",
    "{p0:String}", "{limit:UInt64}", "$$; DROP TABLE records; $$", "$p0$", "%s %(x)s {0}",
    "1; SELECT * FROM system.tables", "' UNION SELECT name FROM system.tables --",
    "/* c */ 1", "nul\x00byte\x00", "tab\tnew\nline\rcr", "ünïcödé 日本語 🎉 \u202eRTL",
    "\ufeffbom", "records", "a" * 4096, "x' FORMAT Native --", "\\x27; DROP TABLE records",
    "name__in", "-created_date", "1 SETTINGS max_execution_time=0",
]
STRING_FIELDS = ["name", "city", "email", "address"]
COLUMNS = [f.name for f in FIELDS]


def make_rows() -> list[dict[str, Any]]:
    rnd = random.Random(99)
    rows = []
    for i in range(200 + len(HOSTILE)):
        hostile = HOSTILE[i - 200] if i >= 200 else None
        h = rnd.getrandbits(128).to_bytes(16, "big")
        text = hostile if hostile is not None else f"person {i}"
        rows.append({
            "id": UUID(bytes=h), "source": "inj", "source_file": "inj.csv", "source_row": i,
            "record_hash": h, "ingested_at": 0, "job_id": 1, "user_id": str(i),
            "email": text, "name": text, "phone": "", "address": text, "city": text,
            "country": "ZZ" if hostile is not None else rnd.choice(["US", "GB"]),
            "created_date": None, "status": "active", "metadata": {},
            "data_quality_score": 0.5, "validation_errors": [],
        })
    return rows


ROWS = make_rows()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("query_inj"), secret_key="inj-secret")


def snapshot(store: Store) -> tuple[Any, ...]:
    return (store.rows("SELECT count(), groupBitXor(cityHash64(id, email, name, address, city, "
                       "country, source_row)) FROM records"),
            store.rows("SELECT database, name FROM system.tables WHERE database NOT IN "
                       "('system', 'INFORMATION_SCHEMA', 'information_schema') ORDER BY ALL"))


@pytest.fixture(scope="module")
def filled(store: Store) -> Iterator[tuple[Store, tuple[Any, ...]]]:
    apply_migrations(store)
    store.command("TRUNCATE TABLE records")
    store.insert("records", COLUMNS, [[r[c] for c in COLUMNS] for r in ROWS])
    yield store, snapshot(store)


@pytest.fixture
def db(filled: tuple[Store, tuple[Any, ...]]) -> Iterator[Store]:
    store, before = filled
    assert store.scalar("SELECT count() FROM records") == len(ROWS)
    yield store
    assert snapshot(store) == before  # every row still there, no table dropped or made


def ids(page_rows: list[dict[str, Any]]) -> list[str]:
    return sorted(r["id"] for r in page_rows)


def want(pred: Any) -> list[str]:
    return sorted(str(r["id"]) for r in ROWS if pred(r))


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_match_only_literally(db: Store, settings: Settings,
                                             hostile: str) -> None:
    def run(filters: dict[str, Any]) -> list[str]:
        page = run_query(db, QueryRequest.model_validate(
            {"filters": filters, "fields": ["id"], "limit": 1000}), settings)
        assert page.total == len(page.rows)
        return ids(page.rows)

    for field in STRING_FIELDS:
        exact = want(lambda r, f=field: r[f] == hostile)
        assert len(exact) == 1  # exactly the row we stored with this literal
        assert run({field: hostile}) == exact
        assert run({field: {"in": [hostile, "not there"]}}) == exact
        assert run({field: {"ne": hostile}}) == want(lambda r, f=field: r[f] != hostile)
        assert run({field: {"nin": [hostile]}}) == want(lambda r, f=field: r[f] != hostile)
        assert run({field: {"contains": hostile}}) == want(lambda r, f=field: hostile in r[f])
        assert run({field: {"prefix": hostile}}) == want(
            lambda r, f=field: r[f].startswith(hostile))
        assert run({field: {"gte": hostile, "lte": hostile}}) == exact
    assert run({"country": hostile}) == []
    assert run({"status": [hostile, "active"]}) == want(lambda r: True)
    assert run({"validation_errors": {"contains": hostile}}) == []
    if "," not in hostile:  # the query string splits __in on commas
        q = query_from_params([("name", hostile), ("city__in", hostile),
                               ("email__prefix", hostile), ("_fields", "id")])
        assert ids(run_query(db, q, settings).rows) == want(lambda r: r["name"] == hostile)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_for_typed_fields_are_refused(db: Store, settings: Settings,
                                                     hostile: str) -> None:
    for field, op in (("id", "eq"), ("source_row", "gt"), ("job_id", "in"),
                      ("data_quality_score", "lte"), ("created_date", "gte"),
                      ("ingested_at", "lt"), ("created_date", "nin")):
        value = [hostile] if op in ("in", "nin") else hostile
        with pytest.raises(InvalidQuery) as info:
            run_query(db, QueryRequest.model_validate({"filters": {field: {op: value}}}),
                      settings)
        assert info.value.code == "INVALID_QUERY"
        with pytest.raises(InvalidQuery):
            query_from_params([(f"{field}__{op}", hostile)])
    with pytest.raises(InvalidQuery):
        get_record(db, hostile, None, settings)


# "name__in" and "-created_date" are real filter / sort spellings: hostile as values only.
HOSTILE_NAMES = [h for h in HOSTILE if h not in ("name__in", "-created_date")]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_are_refused(db: Store, settings: Settings, hostile: str) -> None:
    bodies: list[dict[str, Any]] = [
        {"filters": {hostile: "x"}}, {"filters": {hostile: {"eq": "x"}}},
        {"fields": [hostile]}, {"fields": ["id", hostile]}, {"sort": hostile},
        {"sort": "-" + hostile}, {"sort": [{"field": hostile, "order": "desc"}]},
        {"sort": ["name", hostile]},
    ]
    for body in bodies:
        with pytest.raises(InvalidQuery) as info:
            run_query(db, QueryRequest.model_validate(body), settings)
        assert info.value.code == "INVALID_FIELD" and info.value.valid
        assert len(info.value.message) < 600  # the hostile text is not echoed in full
    for items in ([(hostile, "x")], [(f"{hostile}__eq", "x")], [("_fields", hostile)],
                  [("_sort", hostile)], [("_sort", f"id,{hostile}")], [("_" + hostile, "x")]):
        with pytest.raises(InvalidQuery):
            query_from_params(items)
    with pytest.raises(InvalidQuery):
        get_record(db, str(ROWS[0]["id"]), [hostile], settings)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_operators_and_paging_are_refused(db: Store, hostile: str) -> None:
    with pytest.raises(ValidationError):
        QueryRequest.model_validate({"filters": {"name": {hostile: "x"}}})
    for items in ([(f"name__{hostile}", "x")], [("_limit", hostile)], [("_offset", hostile)],
                  [("name__is_null", hostile)]):
        with pytest.raises(InvalidQuery) as info:
            query_from_params(items)
        assert info.value.code in ("INVALID_QUERY", "INVALID_FIELD")
    for body in ({"limit": hostile}, {"offset": hostile}, {"fields": hostile},
                 {"filters": hostile}, {"filters": {"name": {"is_null": hostile}}}):
        with pytest.raises(ValidationError):
            QueryRequest.model_validate(body)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_cursors_are_invalid(db: Store, settings: Settings, hostile: str) -> None:
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        run_query(db, QueryRequest(cursor=hostile), settings)
    with pytest.raises(InvalidQuery, match="^invalid cursor$"):
        run_query(db, query_from_params([("_cursor", hostile)]), settings)


def test_signed_cursors_with_hostile_values_stay_values(db: Store, settings: Settings) -> None:
    """Even with the secret leaked, cursor values are bound: the page is simply the rows after
    the hostile name in name order."""
    q = QueryRequest(sort="name", fields=["id", "name"], limit=1000)
    first = run_query(db, QueryRequest(sort="name", limit=1), settings)
    assert first.next_cursor is not None
    fingerprint = _fingerprint(first.next_cursor)
    order = sorted(ROWS, key=lambda r: (r["name"].encode(), r["id"].int & (2**64 - 1),
                                        r["id"].int >> 64))
    for hostile in HOSTILE:
        token = encode_cursor([hostile, str(UUID(int=0))], fingerprint, settings.secret_key)
        page = run_query(db, q.model_copy(update={"cursor": token}), settings)
        after = [str(r["id"]) for r in order if r["name"].encode() > hostile.encode()
                 or (r["name"] == hostile)]
        assert [r["id"] for r in page.rows] == after
        bad = encode_cursor([hostile, hostile], fingerprint, settings.secret_key)
        with pytest.raises(InvalidQuery, match="^invalid cursor$"):
            run_query(db, q.model_copy(update={"cursor": bad}), settings)


def test_walking_pages_sorted_by_hostile_values(db: Store, settings: Settings) -> None:
    """Real cursors carrying every hostile name (the 4096-character one too) as a sort value."""
    order = sorted(ROWS, key=lambda r: (r["name"].encode(), r["id"].int & (2**64 - 1),
                                        r["id"].int >> 64), reverse=True)
    got: list[str] = []
    cursor = None
    while True:
        page = run_query(db, QueryRequest(sort="-name", fields=["id"], limit=3, cursor=cursor),
                         settings)
        got += [r["id"] for r in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == [str(r["id"]) for r in order]


def _fingerprint(token: str) -> str:
    body = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["q"])


@pytest.mark.parametrize("value, fragment", [
    ("\ud800", "valid Unicode"), ("x\udfffy", "valid Unicode"), ("a" * 4097, "4096"),
])
def test_unencodable_or_oversized_values_are_refused(db: Store, settings: Settings,
                                                     value: str, fragment: str) -> None:
    for filters in ({"name": value}, {"name": {"contains": value}}, {"city": [value]}):
        with pytest.raises(InvalidQuery, match=fragment):
            run_query(db, QueryRequest.model_validate({"filters": filters}), settings)
    with pytest.raises(InvalidQuery, match=fragment):
        query_from_params([("name", value)])
