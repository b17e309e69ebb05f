"""Turn a detected file into a relation the transform SQL can read.

CSV/TSV, JSON and Parquet are read by the engine itself straight from the file (one pass, no
Python per row). XML, Excel and SQL dumps stream through a Python reader into a staging table.
Either way the transform sees the same thing: source column names, one SQL expression per
column (a Nullable(String)), a FROM clause and a row-number expression.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from recordbank.ingest.errors import EmptyFile, UnreadableFile
from recordbank.ingest.readers.base import Batch, header_names
from recordbank.store.client import Store, quote_ident, sql_string

# Spare columns catch the extra fields of ragged CSV rows so that nothing is dropped.
SPARE_COLUMNS = 8


@dataclass
class Relation:
    columns: list[str]  # source column names, in file order
    exprs: list[str]  # SQL expression (Nullable(String)) per column
    from_sql: str
    row_expr: str
    params: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    spare_exprs: list[str] = field(default_factory=list)  # ragged-row overflow
    notes: dict[str, Any] = field(default_factory=dict)
    staged_rows: int | None = None  # known row count when staged through Python
    # A slower, surer way to read the same file, for when this one fails mid-way.
    fallback: Callable[[], Relation] | None = None

    def sample(self, store: Store, limit: int = 1000) -> dict[str, list[str | None]]:
        cols = ", ".join(self.exprs) or "1"
        rows = store.rows(f"SELECT {cols} FROM {self.from_sql} LIMIT {int(limit)}",
                          self.params, self.settings)
        return {name: [row[i] for row in rows] for i, name in enumerate(self.columns)}


def staging_table(job_id: int) -> str:
    return f"stg_{int(job_id)}"


def csv_relation(path: Path, delimiter: str, has_header: bool, skip_lines: int,
                 quotechar: str = '"') -> Relation:
    header = _read_header(path, delimiter, skip_lines, quotechar)
    if header is None:
        raise EmptyFile(f"{path.name} has no rows")
    if has_header:
        columns = header_names(header)
    else:
        columns = [f"column_{i + 1}" for i in range(len(header))]
    names = [f"c{i}" for i in range(len(columns))]
    spare = [f"_x{i}" for i in range(SPARE_COLUMNS)]
    structure = ", ".join(f"{n} Nullable(String)" for n in names + spare)
    settings = {
        "format_csv_delimiter": delimiter,
        "input_format_with_names_use_header": 0,
        "input_format_csv_skip_first_lines": skip_lines,
        "input_format_csv_allow_variable_number_of_columns": 1,
        "format_csv_allow_single_quotes": 1 if quotechar == "'" else 0,
        "format_csv_allow_double_quotes": 1 if quotechar == '"' else 0,
        "input_format_csv_detect_header": 0,
        "input_format_csv_trim_whitespaces": 0,
        "input_format_csv_empty_as_default": 0,
        "input_format_allow_errors_num": 0,
    }
    fmt = "CSVWithNames" if has_header else "CSV"
    return Relation(columns=columns, exprs=names,
                    from_sql=f"file({{path:String}}, '{fmt}', '{structure}')",
                    row_expr="_row_number", params={"path": str(path)}, settings=settings,
                    spare_exprs=spare)


def json_relation(store: Store, path: Path, job_id: int) -> Relation:
    """JSON arrays and JSON lines, nested objects flattened to dotted paths by the engine."""
    table = staging_table(job_id)
    store.command(f"DROP TABLE IF EXISTS {table}")
    store.command(f"CREATE TABLE {table} (_row UInt64, json JSON) ENGINE = MergeTree "
                  "ORDER BY _row")
    settings = {"input_format_try_infer_dates": 0, "input_format_try_infer_datetimes": 0,
                "input_format_json_try_infer_numbers_from_strings": 0}
    try:
        store.command(f"INSERT INTO {table} SELECT _row_number, json "
                      "FROM file({path:String}, 'JSONAsObject')",
                      parameters={"path": str(path)}, settings=settings)
    except Exception as exc:
        raise UnreadableFile(f"{path.name}: not valid JSON ({first_line(exc)})") from exc
    paths = store.scalar(f"SELECT arraySort(groupUniqArrayArray(JSONAllPaths(json))) FROM {table}")
    if not paths:
        if not store.scalar(f"SELECT count() FROM {table}"):
            raise EmptyFile(f"{path.name} holds no records")
        raise UnreadableFile(f"{path.name}: records hold no fields")
    exprs = [f"nullIf(toString(json.{_json_path(p)}), '')" for p in paths]
    return Relation(columns=list(paths), exprs=exprs, from_sql=table, row_expr="_row")


_JSON_SAMPLE = 10_000
_JSON_AS_TEXT = {
    "input_format_import_nested_json": 1,  # {"address": {"city": …}} fills `address.city`
    "input_format_skip_unknown_fields": 0,  # a key the sample did not see: fall back
    "input_format_json_read_numbers_as_strings": 1,
    "input_format_json_read_bools_as_strings": 1,
    "input_format_json_read_arrays_as_strings": 1,
}


def json_fast_relation(store: Store, path: Path, job_id: int) -> Relation:
    """JSON read in one pass with the structure of its first records (6x faster than the
    JSON type); a record with other keys makes the transform fail, and `fallback` then stages
    the whole file through the JSON type, which sees every key."""
    try:
        paths = store.scalar(
            "SELECT arraySort(groupUniqArrayArray(JSONAllPaths(json))) FROM "
            f"(SELECT json FROM file({{path:String}}, 'JSONAsObject') LIMIT {_JSON_SAMPLE})",
            {"path": str(path)})
    except Exception as exc:
        raise UnreadableFile(f"{path.name}: not valid JSON ({first_line(exc)})") from exc
    if not paths or any(q.startswith(p + ".") for p in paths for q in paths):
        return json_relation(store, path, job_id)  # empty, or a key both leaf and object
    names = [f"c{i}" for i in range(len(paths))]
    structure = ", ".join(f"{quote_ident(p)} Nullable(String)" for p in paths)
    inner = ", ".join(f"{quote_ident(p)} AS {n}" for p, n in zip(paths, names, strict=True))
    return Relation(
        columns=list(paths), exprs=[f"nullIf({n}, '')" for n in names],
        from_sql=(f"(SELECT _row_number, {inner} FROM file({{path:String}}, 'JSONEachRow', "
                  f"{sql_string(structure)}))"),
        row_expr="_row_number", params={"path": str(path)}, settings=dict(_JSON_AS_TEXT),
        fallback=lambda: json_relation(store, path, job_id))


def parquet_relation(store: Store, path: Path) -> Relation:
    try:
        described = store.rows("DESCRIBE file({path:String}, 'Parquet')", {"path": str(path)})
    except Exception as exc:
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({first_line(exc)})") \
            from exc
    columns = [row[0] for row in described]
    if not columns:
        raise EmptyFile(f"{path.name} has no columns")
    exprs = [f"nullIf(toString({quote_ident(c)}), '')" for c in columns]
    return Relation(columns=columns, exprs=exprs, from_sql="file({path:String}, 'Parquet')",
                    row_expr="_row_number", params={"path": str(path)})


def staged_relation(store: Store, job_id: int, batches: Iterator[Batch],
                    on_rows: Callable[[int], None] | None = None) -> Relation:
    """Stream a Python reader's batches into a staging table; columns may appear late."""
    table = staging_table(job_id)
    store.command(f"DROP TABLE IF EXISTS {table}")
    store.command(f"CREATE TABLE {table} (_row UInt64) ENGINE = MergeTree ORDER BY _row")
    columns: dict[str, str] = {}  # source name -> staging column
    row = 0
    for batch in batches:
        for record in batch:
            for key in record:
                if key not in columns:
                    columns[key] = f"c{len(columns)}"
                    store.command(f"ALTER TABLE {table} ADD COLUMN {columns[key]} "
                                  "Nullable(String)")
        if not batch:
            continue
        store.insert_arrow(table, pa.table(  # Arrow: half the cost of row-by-row conversion
            {"_row": pa.array(range(row, row + len(batch)), pa.uint64()),
             **{columns[n]: pa.array([rec.get(n) for rec in batch], pa.string())
                for n in columns}}))
        row += len(batch)
        if on_rows:
            on_rows(row)
    if row == 0:
        raise EmptyFile("the file holds no records")
    return Relation(columns=list(columns), exprs=list(columns.values()), from_sql=table,
                    row_expr="_row", staged_rows=row)


def drop_staging(store: Store, job_id: int) -> None:
    store.command(f"DROP TABLE IF EXISTS {staging_table(job_id)}")


def _read_header(path: Path, delimiter: str, skip_lines: int,
                 quotechar: str) -> list[str] | None:
    # utf-8-sig: a byte-order mark is not part of the first name
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        for _ in range(skip_lines):
            if not fh.readline():
                return None
        text = _bounded_first_record(fh)
    if not text.strip():
        return None
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quotechar)
    try:
        return next(reader)
    except (StopIteration, csv.Error) as exc:
        raise UnreadableFile(f"{path.name}: cannot read the header ({exc})") from exc


def _bounded_first_record(fh: io.TextIOBase, limit: int = 1 << 20) -> str:
    """The first CSV record's text (quoted newlines included), at most `limit` characters."""
    out: list[str] = []
    size = 0
    quotes = 0
    while size < limit:
        line = fh.readline()
        if not line:
            break
        out.append(line)
        size += len(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            break
    if size >= limit:
        raise UnreadableFile("the header line is longer than 1 MiB: not a delimited text file")
    return "".join(out)


def _json_path(path: str) -> str:
    return ".".join(quote_ident(part) for part in path.split("."))


def first_line(exc: BaseException) -> str:
    """The first line of an engine error: enough to say why, without the stack."""
    text = str(exc).strip().splitlines()
    return text[0][:400] if text else type(exc).__name__

