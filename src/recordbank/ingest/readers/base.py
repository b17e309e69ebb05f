"""What every Python-side reader yields: batches of flat string rows.

Formats the engine reads natively (CSV, TSV, JSON, Parquet, MySQL dumps) skip these readers;
the others (XML, Excel, PostgreSQL dumps, and anything needing transcoding) stream through here.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def header_names(cells: Sequence[str]) -> list[str]:
    """Column names from a header row, the one rule for every reader (engine CSV, Python CSV
    and TSV, Excel), so that the same file maps the same way whichever path reads it.

    Trimmed, byte-order marks dropped, blanks named column_N (N = position from 1), repeats
    suffixed _2, _3, ... A suffix never takes a name the header spells out itself, so every
    name is unique and real headers keep theirs: ``a, a, a_2`` gives ``a, a_3, a_2``.
    """
    bases = [cell.replace("\ufeff", "").strip() for cell in cells]
    spelled = {b for b in bases if b}
    used: set[str] = set()
    out: list[str] = []
    for i, base in enumerate(bases):
        name = base or f"column_{i + 1}"
        if name in used or (not base and name in spelled):
            n = 2
            while f"{name}_{n}" in used or f"{name}_{n}" in spelled:
                n += 1
            name = f"{name}_{n}"
        used.add(name)
        out.append(name)
    return out
