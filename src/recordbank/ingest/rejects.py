"""A job's quarantined rows as CSV, streamed from the store in constant memory.

Columns: `source_row`, `reasons` (the reason codes joined with `;`), `raw` (the row's original
values, a JSON object in the file's column order). ClickHouse writes the CSV, read as the
export reads it (query/export_engine.py): chDB's block stream on the embedded store, the HTTP
stream of a ClickHouse server otherwise. Cells a spreadsheet would run as a formula get a
leading ' (the JSON object starts with `{`, the row number is a number).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Final

from recordbank.query.export import map_json, neutralized, valid_utf8
from recordbank.query.export_engine import ahead, bind, chdb_blocks, client_pieces
from recordbank.store.client import Store

HEADER: Final = b"source_row,reasons,raw\n"
MEDIA_TYPE: Final = "text/csv; charset=utf-8"
BLOCK_ROWS: Final = 65_536

SQL: Final = (
    f"SELECT source_row, {neutralized(valid_utf8('joined'))} AS reasons, {map_json('raw')} AS raw"
    "\nFROM (SELECT source_row, arrayStringConcat(reasons, ';') AS joined, raw"
    "\n      FROM quarantine WHERE job_id = {job:UInt64} ORDER BY source_row) AS _rejects"
    f"\nSETTINGS max_block_size = {BLOCK_ROWS}"
)


def stream(store: Store, job_id: int) -> Generator[bytes, None, None]:
    """The CSV in pieces. The query runs on the first next(), which yields the header with
    the first rows, so a caller that primes one piece before answering turns store errors
    into an error answer. close() stops the query."""
    params = {"job": job_id}
    pieces: Generator[tuple[bytes, int | None], None, None]
    if store.embedded:
        pieces = ahead(chdb_blocks(store, *bind(store, SQL, params), "CSV"))
    else:
        pieces = client_pieces(store, SQL, params, "CSV", 1 << 20)
    return _with_header(pieces)


def _with_header(pieces: Generator[tuple[bytes, int | None], None, None]
                 ) -> Generator[bytes, None, None]:
    try:
        pending = HEADER
        for data, _rows in pieces:
            if data:
                yield pending + data
                pending = b""
        if pending:
            yield pending
    finally:
        pieces.close()
