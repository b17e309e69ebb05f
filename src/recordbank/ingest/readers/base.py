"""What every Python-side reader yields: batches of flat string rows.

Formats the engine reads natively (CSV, TSV, JSON, Parquet, MySQL dumps) skip these readers;
the others (XML, Excel, PostgreSQL dumps, and anything needing transcoding) stream through here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

# One row: column name -> value as text (None = absent / SQL NULL). Nested keys are flattened
# with dots ("address.city"). Column order is the order of first appearance.
Row = dict[str, str | None]
Batch = list[Row]


@dataclass
class ReadOptions:
    batch_rows: int = 50_000
    table: str | None = None  # dump table name, Excel sheet name, or XML record element
    encoding: str | None = None  # forced text encoding
    delimiter: str | None = None
    quotechar: str = '"'
    has_header: bool = True
    skip_lines: int = 0  # title or blank lines above the header
    # Filled in by the reader for the job's report: e.g. {"table": "customer", "why": "..."}.
    notes: dict[str, object] = field(default_factory=dict)


RowBatches = Iterator[Batch]


def header_names(cells: Sequence[str]) -> list[str]:
    """Column names from a header row: trimmed, blanks named column_N, repeats suffixed _2, _3."""
    seen: dict[str, int] = {}
    out = []
    for i, cell in enumerate(cells):
        name = cell.strip() or f"column_{i + 1}"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
