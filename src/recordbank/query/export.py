"""Streamed export of every matching row as CSV, NDJSON or Parquet, in constant memory.

clickhouse-connect's ``raw_stream`` streams from chDB only for header/footer-free formats and
no call settings (CSVWithNames, Parquet, ArrowStream, ``settings=``: materialized, 4 GB RSS for
5M rows), so the embedded store is read through chDB's streaming API on a connection of our own
(whole-row blocks with their row count); a ClickHouse server streams any format over HTTP, so
there ``raw_stream`` is used and rows are counted here. ClickHouse writes the CSV/JSONEachRow
bytes; Parquet is pyarrow's writer over the engine's Arrow batches. The query asks for
``max_rows + 1`` rows: the extra one, if it comes, is cut off and proves that more rows match.

Signal of a cut (max_rows): NDJSON always ends with ``{"_export": {"rows": N, "complete":
true|false, "reason": null|"max_rows"}}`` (no field starts with ``_``; a stream cut by the
network lacks it). CSV: complete exports have no trailer; a cut one ends with the unquoted line
``# export stopped at max_rows=N: more rows match``. String cells are always quoted, so it is
the trailer exactly when the last line starts with ``#`` and holds no ``"`` (pandas skips it
with ``comment='#'``). Parquet: the JSON object in the footer metadata ``recordbank.export``.

CSV cells a spreadsheet would run as a formula (= + - @, tab, CR first) get a leading ``'``,
in SQL, except plain numbers ("+14155550123", "-12.5"). Map/Array cells are JSON text in CSV;
NULL is an empty cell. Timestamps are UTC: ``2024-01-31 12:00:00.000`` in CSV, ISO 8601 with
``Z`` in NDJSON. UUIDs are text in every format.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from recordbank.config import Settings
from recordbank.query.export_engine import (
    EngineTimeLimit,
    ahead,
    bind,
    chdb_blocks,
    client_pieces,
)
from recordbank.query.run import QueryTimeout
from recordbank.schema import FIELD_BY_NAME
from recordbank.store.client import Store, quote_ident, sql_string

FORMATS: Final[tuple[str, ...]] = ("csv", "ndjson", "parquet")
MEDIA_TYPES: Final[dict[str, str]] = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
PARQUET_METADATA_KEY: Final = "recordbank.export"
CUT_REASON: Final = "max_rows"
TIME_REASON: Final = "time_limit"

_TEXT_FORMAT: Final = {"csv": "CSV", "ndjson": "TSVRaw"}  # Parquet comes from Arrow
# Settings ride in the SQL (call settings would make clickhouse-connect buffer everything).
# A sort off the table key spills beyond 256 MiB (5M rows: 1.5-1.7 GB peak RSS, not 2.2 GB).
_SETTINGS: Final = {
    "csv": {"format_csv_null_representation": "''"},
    "ndjson": {"output_format_json_escape_forward_slashes": "0"},
    "parquet": {"output_format_arrow_string_as_string": "1",
                "output_format_arrow_low_cardinality_as_dictionary": "0"},
    "all": {"max_bytes_before_external_sort": "268435456",
            "max_bytes_ratio_before_external_sort": "0"},
}
_STRINGS: Final = ("String", "LowCardinality(String)")
T = TypeVar("T")
_REPETITIVE: Final = ("source_file", "city")  # plain String fields with few distinct values


@dataclass
class ExportStats:
    """Filled while the stream runs; final once the iterator is exhausted."""

    rows: int = 0
    stopped_short: bool = False
    reason: str | None = None


def stream_export(store: Store, select_sql: str, parameters: dict[str, Any], fields: list[str],
                  fmt: str, *, max_rows: int | None, settings: Settings,
                  stats: ExportStats) -> Generator[bytes, None, None]:
    """The export as byte chunks; close() stops the query. Bad arguments raise ValueError at
    once; the query runs on the first ``next()``, which returns only once the engine delivered
    data, so a caller that primes one chunk before sending headers still turns query errors
    into error responses. ``select_sql`` returns exactly ``fields``, named so."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    check_fields(fields)
    if max_rows is not None and (isinstance(max_rows, bool) or max_rows < 0):
        raise ValueError("max_rows must be a non-negative integer or None")
    limit = None if max_rows is None else max_rows + 1
    sql = export_sql(select_sql, fields, fmt, limit, settings.export_chunk_rows,
                     time_limit=settings.export_time_limit_seconds)
    return _stream(store, sql, parameters, fields, fmt, max_rows, settings.export_chunk_rows,
                   stats, chdb_stream=store.embedded)


def check_fields(fields: list[str]) -> None:
    if not fields:
        raise ValueError("an export needs at least one field")
    unknown = [name for name in fields if name not in FIELD_BY_NAME]
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(map(repr, unknown))}")
    if len(set(fields)) != len(fields):
        raise ValueError("fields must not repeat")


def _stream(store: Store, sql: str, parameters: dict[str, Any], fields: list[str], fmt: str,
            cap: int | None, chunk_rows: int, stats: ExportStats, *, chdb_stream: bool,
            piece_bytes: int = 1 << 20) -> Generator[bytes, None, None]:
    """chdb_stream: chDB's streaming API (embedded store); else clickhouse-connect's raw_stream,
    the path of a ClickHouse server (it runs on chDB too, which is how the tests cover it)."""
    bound = bind(store, sql, parameters) if chdb_stream else None
    if fmt == "parquet":
        batches = _arrow_batches(store, sql, parameters, bound, piece_bytes)
        return _parquet_export(batches, arrow_schema(fields), cap, chunk_rows, stats)
    pieces: Generator[tuple[bytes, int | None], None, None]
    if bound:
        pieces = ahead(chdb_blocks(store, *bound, _TEXT_FORMAT[fmt]))
    else:
        pieces = client_pieces(store, sql, parameters, _TEXT_FORMAT[fmt], piece_bytes)
    header = (",".join(fields) + "\n").encode() if fmt == "csv" else b""
    return _text_export(pieces, fmt, cap, stats, header)


# --- SQL ---------------------------------------------------------------------------------------

def export_sql(select_sql: str, fields: list[str], fmt: str, limit: int | None,
               block_rows: int, *, time_limit: float | None = None) -> str:
    """Wrap the compiled SELECT: per-format cells, the row cap and our settings. The outer
    query only projects and limits, so the inner ORDER BY survives (checked on 5M rows with
    a sort off the table key and 4 threads)."""
    inner = select_sql.strip().rstrip(";").strip()
    if fmt == "ndjson":
        cols = _json_line(fields) + " AS _line"
    else:
        cols = ",\n  ".join(f"{_cell(name, fmt)} AS {quote_ident(name)}" for name in fields)
    sql = f"SELECT\n  {cols}\nFROM (\n{inner}\n) AS _export"
    if limit is not None:
        sql += f"\nLIMIT {int(limit)}"
    merged = {**_SETTINGS["all"], "max_block_size": str(int(block_rows)), **_SETTINGS[fmt]}
    if time_limit is not None:
        merged["max_execution_time"] = repr(float(time_limit))
    return sql + "\nSETTINGS " + ", ".join(f"{k} = {v}" for k, v in merged.items())


def _cell(name: str, fmt: str) -> str:
    """A CSV or Parquet cell. Every string is valid UTF-8 on the way out (bad bytes become
    U+FFFD), so no reader chokes on a stray byte from a source file."""
    ch_type, col = FIELD_BY_NAME[name].ch_type, f"_export.{quote_ident(name)}"
    if ch_type.startswith("FixedString"):
        return f"lower(hex({col}))"
    if ch_type.startswith("Array("):
        valid = f"arrayMap(x -> {valid_utf8('x')}, {col})"
        return f"toJSONString({valid})" if fmt == "csv" else valid
    if ch_type.startswith("Map("):  # JSON text starts with {: no formula to neutralize
        if fmt == "csv":
            return map_json(col)
        return f"mapApply((k, v) -> ({valid_utf8('k')}, {valid_utf8('v')}), {col})"
    if ch_type in _STRINGS:
        return neutralized(valid_utf8(col)) if fmt == "csv" else valid_utf8(col)
    return f"toString({col})" if ch_type == "UUID" and fmt == "parquet" else col


def _json_line(fields: list[str]) -> str:
    """One JSON object per row, built in SQL and written raw (TSVRaw; toJSONString escapes
    every newline): 1.6x faster than JSONEachRow here (5M rows, all fields: 8 s vs 13 s)."""
    parts = []
    for i, name in enumerate(fields):
        ch_type, col = FIELD_BY_NAME[name].ch_type, f"_export.{quote_ident(name)}"
        parts.append(sql_string(("{" if i == 0 else ",") + json.dumps(name) + ":"))
        if ch_type in _STRINGS:
            parts.append(f"toJSONString({valid_utf8(col)})")
        elif ch_type.startswith("Map("):
            parts.append(map_json(col))
        elif ch_type.startswith("Array("):
            parts.append(f"toJSONString(arrayMap(x -> {valid_utf8('x')}, {col}))")
        elif ch_type == "UInt64":
            parts.append(f"toString({col})")
        elif ch_type == "Float32":  # NaN and infinities are not JSON numbers
            parts.append(f"if(isFinite({col}), toString({col}), 'null')")
        elif ch_type.startswith("DateTime64"):
            parts.append(f"concat('\"', replaceOne(toString({col}), ' ', 'T'), 'Z\"')")
        else:  # UUID, FixedString, Nullable(Date32): quoted text or null
            text = f"lower(hex({col}))" if ch_type.startswith("FixedString") else col
            parts.append(f"ifNull(concat('\"', toString({text}), '\"'), 'null')")
    return f"concat({', '.join(parts)}, '}}')"


def valid_utf8(expr: str) -> str:
    """A string expression with invalid UTF-8 replaced (U+FFFD), so no reader chokes."""
    return f"if(isValidUTF8({expr}), {expr}, toValidUTF8({expr}))"


def map_json(col: str) -> str:
    """The JSON object toJSONString(map) writes, 3x faster (per-entry string escaping instead
    of the generic serializer: 1.3 s instead of 4.2 s per 5M two-entry maps)."""
    return (f"concat('{{', arrayStringConcat(arrayMap((k, v) -> concat(toJSONString("
            f"{valid_utf8('k')}), ':', toJSONString({valid_utf8('v')})), mapKeys({col}), "
            f"mapValues({col})), ','), '}}')")


def neutralized(expr: str) -> str:
    """Prefix ' to a cell a spreadsheet would run as a formula; plain numbers pass. The tab
    and CR are ClickHouse escapes, turned into the characters themselves. A first-byte test
    instead of a regex: the cheap test runs for every cell, the regex only for suspects."""
    return (f"if(substring({expr}, 1, 1) IN ('=', '+', '-', '@', '\\t', '\\r') "
            f"AND NOT match({expr}, '^[+-]?[0-9]+([.][0-9]+)?$'), concat('''', {expr}), {expr})")


# --- CSV and NDJSON ----------------------------------------------------------------------------

class _RecordEnds:
    """Offsets just past each record's terminating newline in successive pieces. An NDJSON row
    never holds a raw newline. In ClickHouse CSV every string cell is quoted and quotes inside
    are doubled, so a newline ends a record exactly when the quotes before it are even."""

    def __init__(self, csv: bool) -> None:
        self.csv = csv
        self.odd = 0  # quote parity carried over from earlier pieces

    def __call__(self, piece: bytes) -> np.ndarray:
        data = np.frombuffer(piece, dtype=np.uint8)
        newlines = np.flatnonzero(data == 10)
        if self.csv:
            quotes = np.flatnonzero(data == 34)
            newlines = newlines[(np.searchsorted(quotes, newlines) + self.odd) % 2 == 0]
            self.odd = (self.odd + len(quotes)) % 2
        return newlines + 1


def _text_export(pieces: Generator[tuple[bytes, int | None], None, None], fmt: str,
                 cap: int | None, stats: ExportStats,
                 header: bytes) -> Generator[bytes, None, None]:
    csv = fmt == "csv"
    counter = _RecordEnds(csv)
    pending = header  # sent with the first data, so the query has run before anything is sent
    reached = False
    pieces = _until_time_limit(pieces, stats, started=lambda: pending != header)
    try:
        for piece, known_rows in pieces:
            if not piece:
                continue
            if reached:  # anything after the cap is the extra row
                stats.stopped_short = True
                break
            ends = counter(piece) if known_rows is None else None
            rows = len(ends) if ends is not None else int(known_rows or 0)
            if cap is None or stats.rows + rows < cap:
                stats.rows += rows
                yield pending + piece if pending else piece
                pending = b""
                continue
            keep = cap - stats.rows
            if ends is None:  # a chDB piece starts at a record boundary
                ends = _RecordEnds(csv)(piece)
            stop = int(ends[keep - 1]) if keep else 0
            stats.rows = cap
            pending += piece[:stop]
            reached = True
            if stop < len(piece):
                stats.stopped_short = True
                break
    finally:
        pieces.close()  # stops the engine query at once, also when cut short
    if stats.stopped_short and stats.reason is None:
        stats.reason = CUT_REASON
    tail = _trailer(fmt, stats, cap)
    if pending or tail:
        yield pending + tail


def _trailer(fmt: str, stats: ExportStats, cap: int | None) -> bytes:
    if fmt == "ndjson":
        return json.dumps({"_export": _summary(stats)}, separators=(",", ":")).encode() + b"\n"
    if stats.reason == TIME_REASON:
        return b"# export stopped at the export time limit: more rows may match\n"
    if stats.stopped_short:
        return f"# export stopped at max_rows={cap}: more rows match\n".encode()
    return b""


def _until_time_limit(source: Generator[T, None, None], stats: ExportStats, *,
                      started: Callable[[], bool]) -> Generator[T, None, None]:
    """The source's items until the engine stops the query at the export time limit. Before
    any row the export fails (504, nothing charged); after some it ends normally with the cut
    signal (reason time_limit), so the client knows the rows it has are not all."""
    try:
        yield from source
    except EngineTimeLimit as exc:
        if not started() and stats.rows == 0:
            raise QueryTimeout("the export hit its time limit before the first rows; "
                               "narrow the filters") from exc
        stats.stopped_short, stats.reason = True, TIME_REASON


def _summary(stats: ExportStats) -> dict[str, Any]:
    return {"rows": stats.rows, "complete": not stats.stopped_short, "reason": stats.reason}


# --- Parquet -----------------------------------------------------------------------------------

_ARROW_TYPES: Final = {
    "String": pa.string(), "LowCardinality(String)": pa.string(), "UUID": pa.string(),
    "FixedString(16)": pa.string(), "UInt64": pa.uint64(), "Float32": pa.float32(),
    "Nullable(Date32)": pa.date32(), "DateTime64(3, 'UTC')": pa.timestamp("ms", tz="UTC"),
    "Map(String, String)": pa.map_(pa.string(), pa.string()),
    "Array(LowCardinality(String))": pa.list_(pa.string()),
}


def arrow_schema(fields: list[str]) -> pa.Schema:
    """The Parquet schema, from the master schema: known even when no row matches."""
    out = []
    for name in fields:
        ch_type = FIELD_BY_NAME[name].ch_type
        if ch_type not in _ARROW_TYPES:
            raise ValueError(f"field {name!r} of type {ch_type} cannot be exported")
        out.append(pa.field(name, _ARROW_TYPES[ch_type], nullable=ch_type.startswith("Nullable")))
    return pa.schema(out)


def _arrow_batches(store: Store, sql: str, parameters: dict[str, Any],
                   bound: tuple[str, dict[str, str]] | None,
                   piece_bytes: int) -> Generator[pa.RecordBatch, None, None]:
    if bound:  # chDB: every block is an Arrow IPC file of its own
        pieces = ahead(chdb_blocks(store, *bound, "Arrow"))
        try:
            for data, rows in pieces:
                if rows:
                    reader = ipc.open_file(pa.py_buffer(data))
                    for i in range(reader.num_record_batches):
                        yield reader.get_batch(i)
        finally:
            pieces.close()
        return
    stream = cast(io.RawIOBase, store.client.raw_stream(sql, parameters=parameters,
                                                        fmt="ArrowStream"))
    try:
        buffered = io.BufferedReader(stream, piece_bytes)
        if buffered.peek(1):  # an empty result may come as no bytes at all
            yield from ipc.open_stream(buffered)
    finally:
        stream.close()


class _Sink(io.BytesIO):
    """Where the Parquet writer writes, drained after every row group; tell() still counts
    from the file's start, as the footer records absolute offsets."""

    drained = 0

    def tell(self) -> int:
        return self.drained + super().tell()

    def take(self) -> bytes:
        out = self.getvalue()
        self.drained += len(out)
        self.seek(0)
        self.truncate()
        return out


def _parquet_export(batches: Generator[pa.RecordBatch, None, None], schema: pa.Schema,
                    cap: int | None, group_rows: int,
                    stats: ExportStats) -> Generator[bytes, None, None]:
    sink = _Sink()
    # Dictionaries and min/max statistics only where they pay: on unique strings they halve
    # the write speed (2.1 s vs 1.2 s per 1M rows) and grow the file.
    repetitive = [f.name for f in schema if f.name in _REPETITIVE
                  or "LowCardinality" in FIELD_BY_NAME[f.name].ch_type]
    scalar = repetitive + [f.name for f in schema if not pa.types.is_string(f.type)
                           and not pa.types.is_nested(f.type)]
    writer = pq.ParquetWriter(sink, schema, compression="zstd", use_dictionary=repetitive,
                              write_statistics=scalar)
    group: list[pa.RecordBatch] = []
    held = 0

    def flush() -> None:
        nonlocal group, held
        if held:
            writer.write_table(pa.Table.from_batches(group, schema), row_group_size=held)
        stats.rows += held
        group, held = [], 0

    started = False
    batches = _until_time_limit(batches, stats, started=lambda: started or held > 0)
    try:
        for batch in batches:
            if cap is not None and stats.rows + held + batch.num_rows > cap:
                stats.stopped_short = True
                batch = batch.slice(0, cap - stats.rows - held)
            group.append(batch.cast(schema))
            held += batch.num_rows
            if held >= group_rows or stats.stopped_short:
                flush()
                if data := sink.take():
                    started = True
                    yield data
            if stats.stopped_short:
                break
    finally:
        batches.close()
    flush()
    if stats.stopped_short and stats.reason is None:
        stats.reason = CUT_REASON
    writer.add_key_value_metadata({PARQUET_METADATA_KEY: json.dumps(_summary(stats))})
    writer.close()
    yield sink.take()
