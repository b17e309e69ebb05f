"""Parquet read in Python (row groups in batches), for stores that cannot read the file
themselves: a ClickHouse server does not see the client's disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from recordbank.ingest.errors import UnreadableFile
from recordbank.ingest.readers.base import Batch, ReadOptions


def read(path: Path, options: ReadOptions) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UnreadableFile(f"{path.name}: not a readable Parquet file ({exc})") from exc
    for record_batch in pf.iter_batches(batch_size=options.batch_rows):
        columns = record_batch.schema.names
        values = [_texts(record_batch.column(i).to_pylist()) for i in range(len(columns))]
        yield [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _texts(values: list[object]) -> list[str | None]:
    return [None if v is None else v if isinstance(v, str) else str(v) for v in values]
