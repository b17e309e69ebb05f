"""Delimited text read in Python, for dialects the engine's CSV reader refuses (tab-separated
files with CSV quoting and CRLF line ends). CSV itself goes to the engine (ingest/loading.py)."""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

from recordbank.ingest.errors import EmptyFile, UnreadableFile
from recordbank.ingest.readers.base import Batch, ReadOptions, header_names

csv.field_size_limit(sys.maxsize)


def read(path: Path, options: ReadOptions) -> Iterator[Batch]:
    encoding = options.encoding or "utf-8"
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a byte-order mark is not part of the first field
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        for _ in range(options.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=options.delimiter or "\t",
                            quotechar=options.quotechar or '"')
        try:
            first = next(reader, None)
            if first is None:
                raise EmptyFile(f"{path.name} has no rows")
            if options.has_header:
                header = header_names(first)
                pending: list[list[str]] = []
            else:
                header = [f"column_{i + 1}" for i in range(len(first))]
                pending = [first]
            batch: Batch = []
            for row in itertools.chain(pending, reader):
                record: dict[str, str | None] = dict(zip(header, row, strict=False))
                for i in range(len(header), len(row)):  # extra fields of ragged rows are kept
                    record[f"_extra_{i - len(header) + 1}"] = row[i]
                batch.append(record)
                if len(batch) >= options.batch_rows:
                    yield batch
                    batch = []
            if batch:
                yield batch
        except csv.Error as exc:
            raise UnreadableFile(f"{path.name}: line {reader.line_num}: {exc}") from exc
    options.notes["header"] = header
