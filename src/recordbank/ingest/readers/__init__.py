"""One module per format; each exposes ``read(path, options) -> Iterator[Batch]``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from recordbank.ingest.errors import UnsupportedFormat
from recordbank.ingest.readers.base import Batch, ReadOptions

Reader = Callable[[Path, ReadOptions], Iterator[Batch]]


def reader_for(fmt: str) -> Reader:
    """The Python reader of a detected format (imported on demand: lxml, calamine, pyarrow)."""
    if fmt == "xml":
        from recordbank.ingest.readers import xml

        return xml.read
    if fmt in ("xlsx", "xls"):
        from recordbank.ingest.readers import excel

        return excel.read
    if fmt == "mysqldump":
        from recordbank.ingest.readers import sqldump

        return sqldump.read
    if fmt == "pgdump":
        from recordbank.ingest.readers import pgdump

        return pgdump.read
    if fmt == "parquet":
        from recordbank.ingest.readers import parquet

        return parquet.read
    raise UnsupportedFormat(f"no reader for format {fmt!r}")
