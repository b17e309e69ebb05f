"""The streamed export: every format round-trips exactly, in order; the row cap is signalled
only when rows were left out; CSV formula cells are neutralized; empty and multi-chunk exports.

Every export runs both ways: through chDB's streaming API (the embedded store) and through
clickhouse-connect's raw_stream with small byte pieces cut anywhere (the path of a ClickHouse
server, which also runs on chDB)."""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from recordbank.config import Settings
from recordbank.query import export
from recordbank.query.export import (
    FORMATS,
    MEDIA_TYPES,
    PARQUET_METADATA_KEY,
    ExportStats,
    export_sql,
    stream_export,
)
from recordbank.query.run import QueryTimeout
from recordbank.schema import FIELDS
from recordbank.store.client import Store
from recordbank.store.ddl import apply_migrations

ALL = [f.name for f in FIELDS if f.name != "record_hash"]
PATHS = ["chdb", "client"]
TRICKY = [
    'Zoë "Z" O\'Brien', "comma, inside", "line\nbreak", "crlf\r\nbreak", "tab\tinside",
    "日本語テキスト", "🙂 emoji", "back\\slash", "", " leading space", 'ends in quote"', '"',
    "#not a trailer", "a\n# export stopped at max_rows=1: more rows match\nb", "\\N", "NULL",
]


def person(n: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid.UUID(int=n + 1), "source": "crm", "source_file": "people.csv",
        "source_row": n, "record_hash": n.to_bytes(16, "big"),
        "ingested_at": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), "job_id": 7,
        "user_id": f"u{n}", "email": f"p{n}@example.com", "name": f"Person {n}",
        "phone": "+14155550123", "address": "1 Main St", "city": "Springfield",
        "country": "US", "created_date": date(2020, 1, 1) + timedelta(days=n),
        "status": "active", "metadata": {}, "data_quality_score": 0.5, "validation_errors": [],
    }
    row.update(over)
    return row


@pytest.fixture
def records(store: Store) -> Store:
    apply_migrations(store)
    store.command("TRUNCATE TABLE records")
    return store


def put(store: Store, rows: list[dict[str, Any]]) -> None:
    names = [f.name for f in FIELDS]
    store.insert("records", names, [[r[c] for c in names] for r in rows])


def run(store: Store, fmt: str, fields: list[str], path: str = "chdb", *,
        where: str = "1", order: str = "source_row", params: dict[str, Any] | None = None,
        max_rows: int | None = None, chunk_rows: int = 1024,
        piece_bytes: int = 777, time_limit: float = 1800) -> tuple[bytes, ExportStats]:
    select = f"SELECT {', '.join(fields)} FROM records WHERE {where} ORDER BY {order}"
    stats = ExportStats()
    settings = Settings(export_chunk_rows=chunk_rows, export_time_limit_seconds=time_limit)
    if path == "chdb":
        chunks = stream_export(store, select, params or {}, fields, fmt, max_rows=max_rows,
                               settings=settings, stats=stats)
    else:
        limit = None if max_rows is None else max_rows + 1
        sql = export_sql(select, fields, fmt, limit, chunk_rows)
        chunks = export._stream(store, sql, params or {}, fields, fmt, max_rows, chunk_rows,
                                stats, chdb_stream=False, piece_bytes=piece_bytes)
    return b"".join(chunks), stats


# --- decoding each format into one comparable shape -------------------------------------------

def decode(fmt: str, data: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(rows, signal): signal is the trailer / footer object, or the CSV trailer line."""
    if fmt == "csv":
        return _decode_csv(data)
    if fmt == "ndjson":
        lines = data.decode().split("\n")
        assert lines[-1] == "", "NDJSON ends with a newline"
        objects = [json.loads(line, parse_constant=_no_constant) for line in lines[:-1]]
        assert "_export" in objects[-1], "NDJSON always ends with the _export trailer"
        return [_canon(o) for o in objects[:-1]], objects[-1]["_export"]
    parquet = pq.ParquetFile(io.BytesIO(data))
    meta = parquet.metadata.metadata or {}
    table = parquet.read()
    return ([_canon(r) for r in table.to_pylist()],
            json.loads(meta[PARQUET_METADATA_KEY.encode()]))


def _no_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _decode_csv(data: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    text = data.decode()
    assert text.endswith("\n")
    last = text[:-1].rsplit("\n", 1)[-1]
    signal = None
    if last.startswith("#") and '"' not in last:  # the documented rule
        signal = {"line": last}
        text = text[: -len(last) - 1]
    table = list(csv.reader(io.StringIO(text, newline="")))
    header, body = table[0], table[1:]
    rows = [_canon(dict(zip(header, values, strict=True)), csv_text=True) for values in body]
    return rows, signal


def _canon(row: dict[str, Any], csv_text: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if csv_text:
            if name in ("source_row", "job_id"):
                value = int(value)
            elif name == "data_quality_score":
                value = float(value)
            elif name in ("metadata", "validation_errors"):
                value = json.loads(value)
            elif name == "created_date":
                value = value or None
            elif name == "ingested_at":
                value = value.replace(" ", "T")
        elif name == "ingested_at":
            value = (value.isoformat(timespec="milliseconds").removesuffix("+00:00")
                     if isinstance(value, datetime) else value.removesuffix("Z"))
        elif name == "created_date" and isinstance(value, date):
            value = value.isoformat()
        elif name == "metadata" and isinstance(value, list):  # Parquet map -> pairs
            value = dict(value)
        out[name] = value
    return out


def expected(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = row[name]
        if name == "id":
            value = str(value)
        elif name == "ingested_at":
            value = value.isoformat(timespec="milliseconds").removesuffix("+00:00")
        elif name == "created_date":
            value = value.isoformat() if value else None
        out[name] = value
    return out


# --- round trips ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_rows_and_order(records: Store, fmt: str, path: str) -> None:
    rows = [person(i, name=text, address=TRICKY[-1 - i], city=f"{text}|{i}",
                   metadata={'k"ey': "v\nal", "ü": "\\", "a,b": text} if i % 2 else {},
                   validation_errors=["bad_phone", 'x"y'] if i % 3 else [],
                   created_date=None if i % 4 == 0 else date(1900 + i, 2, 28),
                   source_row=2**64 - 1 - i, data_quality_score=i / 4,
                   ingested_at=datetime(1999, 12, 31, 23, 59, 59, 1000 * i, tzinfo=UTC))
            for i, text in enumerate(TRICKY)]
    put(records, rows)
    data, stats = run(records, fmt, ALL, path, order="name DESC, source_row")
    got, signal = decode(fmt, data)
    want = [expected(r, ALL) for r in sorted(rows, key=lambda r: r["name"].encode(),
                                              reverse=True)]
    assert got == want
    assert stats == ExportStats(rows=len(rows))
    assert signal is None if fmt == "csv" else signal == {"rows": len(rows), "complete": True,
                                                          "reason": None}


@pytest.mark.parametrize("fmt", FORMATS)
def test_fields_subset_in_the_callers_order(records: Store, fmt: str) -> None:
    put(records, [person(i) for i in range(3)])
    fields = ["email", "source_row", "metadata"]
    data, _ = run(records, fmt, fields, order="source_row DESC")
    got, _ = decode(fmt, data)
    assert [list(r) for r in got] == [fields] * 3
    assert [r["source_row"] for r in got] == [2, 1, 0]
    if fmt == "csv":
        assert data.startswith(b"email,source_row,metadata\n")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_parameters_are_bound(records: Store, fmt: str, path: str) -> None:
    put(records, [person(i, country=["US", "GB"][i % 2], status=["active", "pending",
                                                                  "inactive"][i % 3])
                  for i in range(12)])
    data, stats = run(records, fmt, ["source_row"], path,
                      where="country = {c:String} AND status IN {s:Array(String)}",
                      params={"c": "GB", "s": ["active", "inactive"]})
    got, _ = decode(fmt, data)
    assert [r["source_row"] for r in got] == [3, 5, 9, 11]
    assert stats.rows == 4


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_bytes_and_odd_floats_still_give_valid_files(records: Store, fmt: str,
                                                         path: str) -> None:
    records.command(r"""
        INSERT INTO records (source_row, name, source, metadata, validation_errors,
                             data_quality_score)
        VALUES (0, unhex('41FF42'), unhex('C3'), map(unhex('6BFF'), unhex('76C3')),
                [unhex('65FF')], nan),
               (1, 'tab\there', 'crm', map('k', 'v'), [], inf),
               (2, 'x', 'crm', map(), [], -inf)""")
    fields = ["source_row", "name", "source", "metadata", "validation_errors",
              "data_quality_score"]
    data, stats = run(records, fmt, fields, path)
    got, _ = decode(fmt, data)  # decoding is strict UTF-8 and strict JSON
    assert stats.rows == 3
    assert [r["name"] for r in got] == ["A\ufffdB", "tab\there", "x"]
    assert [r["source"] for r in got] == ["\ufffd", "crm", "crm"]
    assert got[0]["metadata"] == {"k\ufffd": "v\ufffd"}
    assert got[0]["validation_errors"] == ["e\ufffd"]
    scores = [r["data_quality_score"] for r in got]
    if fmt == "ndjson":  # NaN and infinities are not JSON numbers
        assert scores == [None, None, None]
    else:
        assert math.isnan(scores[0]) and scores[1:] == [math.inf, -math.inf]


# --- the row cap --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cap_that_leaves_rows_out_is_signalled(records: Store, fmt: str, path: str) -> None:
    put(records, [person(i, name=f"multi\nline {i}") for i in range(10)])
    for cap in (0, 1, 3, 9):
        data, stats = run(records, fmt, ALL, path, max_rows=cap)
        got, signal = decode(fmt, data)
        assert [r["source_row"] for r in got] == list(range(cap))
        assert stats == ExportStats(rows=cap, stopped_short=True, reason="max_rows")
        if fmt == "csv":
            assert signal == {"line": f"# export stopped at max_rows={cap}: more rows match"}
        else:
            assert signal == {"rows": cap, "complete": False, "reason": "max_rows"}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cap_that_leaves_nothing_out_is_not_signalled(records: Store, fmt: str,
                                                        path: str) -> None:
    put(records, [person(i, name=f"multi\nline {i}") for i in range(10)])
    for cap in (10, 11, 1000, None):
        data, stats = run(records, fmt, ALL, path, max_rows=cap)
        got, signal = decode(fmt, data)
        assert [r["source_row"] for r in got] == list(range(10))
        assert stats == ExportStats(rows=10)
        if fmt == "csv":
            assert signal is None and b"# export" not in data
        else:
            assert signal == {"rows": 10, "complete": True, "reason": None}


@pytest.mark.parametrize("path", PATHS)
def test_the_csv_trailer_cannot_be_forged_by_data(records: Store, path: str) -> None:
    forged = "# export stopped at max_rows=1: more rows match"
    for name in (forged, "x\n" + forged, forged + "\n" + forged):
        records.command("TRUNCATE TABLE records")
        put(records, [person(0, name="first"), person(1, name=name)])
        data, stats = run(records, "csv", ["name"], path)
        got, signal = decode("csv", data)
        assert [r["name"] for r in got] == ["first", name] and signal is None
        data, stats = run(records, "csv", ["name"], path, max_rows=1)
        got, signal = decode("csv", data)
        assert [r["name"] for r in got] == ["first"] and signal == {"line": forged}


# --- CSV formula cells ----------------------------------------------------------------------------

FORMULAS = ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x", "=", "-", "+", "+1.", "--1"]
PLAIN = ["+14155550123", "-12.5", "12", "0.5", "a=b", "x+1", "", " =1"]


@pytest.mark.parametrize("path", PATHS)
def test_csv_formula_cells_are_neutralized(records: Store, path: str) -> None:
    values = FORMULAS + PLAIN
    put(records, [person(i, name=v, phone=v, source=v, metadata={"x": "=1+1"},
                         validation_errors=["=bad"]) for i, v in enumerate(values)])
    fields = ["name", "phone", "source", "metadata", "validation_errors"]
    data, _ = run(records, "csv", fields, path)
    got, _ = decode("csv", data)
    want = ["'" + v for v in FORMULAS] + PLAIN
    assert [r["name"] for r in got] == want
    assert [r["phone"] for r in got] == want
    assert [r["source"] for r in got] == want  # LowCardinality too
    assert all(r["metadata"] == {"x": "=1+1"} for r in got)  # the cell starts with {
    assert all(r["validation_errors"] == ["=bad"] for r in got)


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_other_formats_keep_values_as_they_are(records: Store, fmt: str) -> None:
    put(records, [person(i, name=v) for i, v in enumerate(FORMULAS)])
    data, _ = run(records, fmt, ["name"])
    got, _ = decode(fmt, data)
    assert [r["name"] for r in got] == FORMULAS


# --- empty and large --------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_result_is_a_valid_file(records: Store, fmt: str, path: str) -> None:
    put(records, [person(1)])
    for cap in (None, 0, 5):
        data, stats = run(records, fmt, ALL, path, where="0", max_rows=cap)
        got, signal = decode(fmt, data)
        assert got == [] and stats == ExportStats(rows=0)
        if fmt == "csv":
            assert data == (",".join(ALL) + "\n").encode()
        else:
            assert signal == {"rows": 0, "complete": True, "reason": None}
        if fmt == "parquet":
            schema = pq.read_schema(io.BytesIO(data))
            assert schema.names == ALL
            assert schema.field("created_date").type == pa.date32()
            assert schema.field("ingested_at").type == pa.timestamp("ms", tz="UTC")
            assert schema.field("metadata").type == pa.map_(pa.string(), pa.string())


def _fill(store: Store, n: int) -> None:
    """n rows; every 7th name holds a newline and quotes, so CSV records span lines."""
    store.command(f"""
        INSERT INTO records (id, source, source_row, record_hash, name, email, country,
                             metadata, validation_errors)
        SELECT generateUUIDv4(), 'bulk', number, reinterpretAsFixedString(number),
               if(number % 7 = 0, concat('Ann "', toString(number), '"\\nLee'), 'Bo'),
               concat('e', toString(number), '@x.org'), 'US',
               map('n', toString(number)), ['e', toString(number)]
        FROM numbers({n})""")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_multi_chunk_export_has_every_row_once(records: Store, fmt: str, path: str) -> None:
    n = 20_000
    _fill(records, n)
    for cap in (None, 12_345, n - 1, n):
        data, stats = run(records, fmt, ["source_row", "name", "metadata"], path,
                          order="source_row DESC", max_rows=cap, piece_bytes=4093)
        got, signal = decode(fmt, data)
        kept = n if cap is None else min(cap, n)
        assert [r["source_row"] for r in got] == list(range(n - 1, n - 1 - kept, -1))
        assert all(r["metadata"] == {"n": str(r["source_row"])} for r in got)
        assert stats.rows == kept and stats.stopped_short == (kept < n)
        if fmt == "parquet":
            assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups >= kept // 1024
        if fmt == "ndjson":
            assert signal is not None and signal["complete"] == (kept == n)


def test_the_stream_arrives_in_many_chunks(records: Store) -> None:
    _fill(records, 20_000)
    stats = ExportStats()
    chunks = stream_export(records, "SELECT source_row FROM records ORDER BY source_row", {},
                           ["source_row"], "ndjson", max_rows=None,
                           settings=Settings(export_chunk_rows=1024), stats=stats)
    sizes = [len(c) for c in chunks]
    assert len(sizes) > 10 and stats.rows == 20_000


# --- lifecycle and bad input ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_an_open_or_abandoned_export_leaves_the_store_usable(records: Store, fmt: str) -> None:
    _fill(records, 20_000)
    stats = ExportStats()
    chunks = stream_export(records, "SELECT source_row, name FROM records ORDER BY source_row",
                           {}, ["source_row", "name"], fmt, max_rows=None,
                           settings=Settings(export_chunk_rows=1024), stats=stats)
    assert next(chunks)
    # The same thread's client answers while the export is open, and after it is dropped.
    assert records.scalar("SELECT count() FROM records") == 20_000
    chunks.close()
    assert 0 < stats.rows < 20_000
    assert records.scalar("SELECT count() FROM records") == 20_000
    data, again = run(records, fmt, ["source_row"], max_rows=5)
    assert again.rows == 5


def test_interleaved_exports_stay_apart(records: Store) -> None:
    _fill(records, 20_000)
    settings = Settings(export_chunk_rows=1024)
    stats = {fmt: ExportStats() for fmt in FORMATS}
    open_ = {fmt: stream_export(records, "SELECT source_row FROM records ORDER BY source_row",
                                {}, ["source_row"], fmt, max_rows=15_000, settings=settings,
                                stats=stats[fmt]) for fmt in FORMATS}
    parts: dict[str, list[bytes]] = {fmt: [] for fmt in FORMATS}
    while open_:  # one chunk from each in turn
        for fmt, stream in list(open_.items()):
            chunk = next(stream, None)
            if chunk is None:
                del open_[fmt]
            else:
                parts[fmt].append(chunk)
    for fmt in FORMATS:
        got, _ = decode(fmt, b"".join(parts[fmt]))
        assert [r["source_row"] for r in got] == list(range(15_000))
        assert stats[fmt] == ExportStats(rows=15_000, stopped_short=True, reason="max_rows")


def test_exports_leave_no_client_or_thread_behind(records: Store) -> None:
    put(records, [person(i) for i in range(3)])
    clients, threads = len(records._clients), threading.active_count()
    for fmt in FORMATS * 3:
        run(records, fmt, ["email"])
        chunks = stream_export(records, "SELECT email FROM records", {}, ["email"], fmt,
                               max_rows=None, settings=Settings(), stats=ExportStats())
        next(chunks)
        chunks.close()
        stream_export(records, "SELECT email FROM records", {}, ["email"], fmt,  # never run
                      max_rows=None, settings=Settings(), stats=ExportStats())
    assert (len(records._clients), threading.active_count()) == (clients, threads)


# --- the export time limit ------------------------------------------------------------------

def test_the_time_limit_rides_in_the_sql() -> None:
    sql = export_sql("SELECT email FROM records", ["email"], "csv", None, 1024, time_limit=90)
    assert sql.rstrip().endswith("max_execution_time = 90.0")
    assert "max_execution_time" not in export_sql("SELECT email FROM records", ["email"],
                                                  "csv", None, 1024)


@pytest.mark.parametrize("name", ["export_time_limit_seconds", "query_time_limit_seconds"])
@pytest.mark.parametrize("value", [0, 1e-9, -1, 10**9])
def test_a_time_limit_the_engine_would_read_as_none_is_refused(name: str, value: float) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):  # ClickHouse takes a max_execution_time of 0 as "none"
        Settings(**{name: value})


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_stopped_by_its_time_limit_says_so(records: Store, fmt: str) -> None:
    """Each 8,192-row granule takes ~0.25 s to read (sleepEachRow), in table order (no sort
    holds rows back); the limit stops the query after a few, and the rows sent so far still
    make a valid file that carries the signal."""
    put(records, [person(i) for i in range(30_000)])
    data, stats = run(records, fmt, ALL, where="sleepEachRow(0.00003) = 0", time_limit=0.5,
                      order="country, created_date, id")
    got, signal = decode(fmt, data)
    assert 0 < stats.rows < 30_000 and len(got) == stats.rows
    assert len({r["source_row"] for r in got}) == stats.rows
    assert (stats.stopped_short, stats.reason) == (True, "time_limit")
    if fmt == "csv":
        assert signal == {"line": "# export stopped at the export time limit: "
                                  "more rows may match"}
    else:
        assert signal == {"rows": stats.rows, "complete": False, "reason": "time_limit"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_time_limit_before_the_first_row_is_a_timeout(records: Store, fmt: str) -> None:
    put(records, [person(i) for i in range(8000)])
    with pytest.raises(QueryTimeout):  # the route answers 504 and charges nothing
        run(records, fmt, ["email"], where="sleepEachRow(0.0001) + source_row > 1000000",
            time_limit=0.3, order="country, created_date, id")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failing_query_raises_on_the_first_chunk(records: Store, fmt: str, path: str) -> None:
    put(records, [person(1)])
    with pytest.raises(DatabaseError):
        run(records, fmt, ["email"], path, where="no_such_column = 1")
    with pytest.raises(DatabaseError):
        run(records, fmt, ["email"], path, where="throwIf(source_row = 1, 'boom') = 0")


@pytest.mark.parametrize(("fmt", "fields", "max_rows"), [
    ("xlsx", ["email"], None), ("CSV", ["email"], None), ("", ["email"], None),
    ("csv", [], None), ("csv", ["nope"], None), ("csv", ["email", "email"], None),
    ("csv", ["email; DROP TABLE records"], None), ("csv", ["email"], -1),
    ("ndjson", ["email"], True),
])
def test_bad_arguments_are_refused_at_once(records: Store, fmt: str, fields: list[str],
                                           max_rows: Any) -> None:
    with pytest.raises(ValueError):
        stream_export(records, "SELECT email FROM records", {}, fields, fmt, max_rows=max_rows,
                      settings=Settings(), stats=ExportStats())


def test_media_types_cover_every_format() -> None:
    assert set(MEDIA_TYPES) == set(FORMATS)
