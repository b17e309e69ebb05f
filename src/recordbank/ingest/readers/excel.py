"""Excel workbooks (.xlsx and .xls) through python-calamine (Rust): every visible sheet or one.

Choices, so that the staged rows are predictable:
  - sheets: options.table names one sheet (hidden ones too, if asked for by name); otherwise
    every visible worksheet in workbook order. Hidden and empty sheets are skipped and listed in
    notes["skipped_sheets"]; a workbook with nothing left is an EmptyFile with the reasons.
  - header: the first row whose non-empty cells are mostly distinct text and about as wide as
    the rows under it, so title rows ("Customer list 2024") and blank rows above it are skipped.
    A sheet with no such row gets column_1, column_2, ... and all its rows are data.
  - several sheets: each row keeps its own sheet's headers, and a "_sheet" column says where it
    came from (added to every row whenever more than one visible sheet is a candidate).
  - values as text: 3.0 -> "3", 0.1 -> "0.1", dates "2024-01-31", date-times
    "2024-01-31 08:30:00", times "08:30:00", booleans "true"/"false", empty cells -> None.
Memory: calamine holds one sheet's cells at a time (about 30-40 bytes a cell; Excel caps a sheet
at 1,048,576 rows); rows reach Python one at a time and leave in batches.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from python_calamine import CalamineError, CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile, UnsafeFile
from recordbank.ingest.readers.base import Batch, ReadOptions, Row, header_names

HEADER_SEARCH_ROWS = 30  # a header further down than this is not looked for
MAX_UNCOMPRESSED = 2 * 1024 ** 3  # xlsx parts may expand to this much, no more (zip bombs)
_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
Cell = object


def cell_text(v: Cell) -> str | None:
    """One cell as the text a person reading the sheet would type."""
    t = type(v)
    if t is str:
        return v if v else None  # type: ignore[return-value]
    if t is float:
        f: float = v  # type: ignore[assignment]
        if f.is_integer() and abs(f) < 1e15:
            return str(int(f))
        return format(f, ".15g")
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is dt.datetime:
        d: dt.datetime = v  # type: ignore[assignment]
        if d.time() == dt.time(0):
            return d.date().isoformat()
        return d.isoformat(sep=" ", timespec="microseconds" if d.microsecond else "seconds")
    if t is dt.date:
        return v.isoformat()  # type: ignore[attr-defined]
    if t is dt.time:
        return v.isoformat()  # type: ignore[attr-defined]
    if t is dt.timedelta:
        return str(v)
    if v is None:
        return None
    return str(v)


def _check_container(path: Path) -> str:
    """'xlsx' or 'xls' from the magic bytes; refuses other files and zip bombs."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise EmptyFile(f"{path.name} is empty")
    if head.startswith(_XLS_MAGIC):
        return "xls"
    if not head.startswith(_XLSX_MAGIC):
        raise UnreadableFile(f"{path.name} is not an Excel workbook (neither an xlsx zip nor an "
                             "xls compound file)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise UnreadableFile(f"{path.name} is a damaged xlsx (zip): {exc}") from exc
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise UnsafeFile(f"{path.name} expands to {total / 1024 ** 3:.1f} GiB (limit "
                         f"{MAX_UNCOMPRESSED / 1024 ** 3:.0f} GiB)")
    if not any(i.filename.startswith("xl/worksheets/") for i in infos):
        raise UnreadableFile(f"{path.name} is a zip file without Excel worksheets")
    return "xlsx"


def _width(row: Sequence[Cell]) -> int:
    return sum(1 for v in row if v != "" and v is not None)


def _is_header(row: Sequence[Cell], below: list[Sequence[Cell]]) -> bool:
    cells = [v for v in row if v != "" and v is not None]
    if not cells:
        return False
    texts = [v.strip() for v in cells if isinstance(v, str) and v.strip()]
    if len(texts) < 0.8 * len(cells) or len(set(texts)) < 0.6 * len(texts):
        return False
    widths = [_width(r) for r in below if _width(r)]
    if not widths:
        return len(cells) >= 2 or len(row) == 1
    return len(cells) >= 0.6 * max(widths)


def _header(rows: list[Sequence[Cell]]) -> int | None:
    """Index of the header row among the first rows of a sheet, or None (no header)."""
    for i, row in enumerate(rows):
        if _width(row) and _is_header(row, rows[i + 1:i + 6]):
            return i
        if _width(row) >= 2 and any(not isinstance(v, str) for v in row if v != ""):
            return None  # data (numbers, dates) before anything header-like
    return None


def _names(row: Sequence[Cell]) -> list[str]:
    return header_names([cell_text(v) or "" for v in row])


def _sheet_rows(wb: CalamineWorkbook, name: str, tag: str | None) -> Iterator[Row]:
    """Rows of one sheet as dicts (header found first); nothing for an empty sheet."""
    rows: Iterator[Sequence[Cell]] = iter(wb.get_sheet_by_name(name).iter_rows())
    head: list[Sequence[Cell]] = []
    for first in rows:
        head.append(first)
        if len(head) >= HEADER_SEARCH_ROWS:
            break
    at = _header(head)
    columns = _names(head[at]) if at is not None else []
    pending = head[at + 1:] if at is not None else head

    def data() -> Iterator[Sequence[Cell]]:
        yield from pending
        yield from rows

    for row in data():
        values = [cell_text(v) for v in row]
        if not any(values):
            continue
        if len(values) > len(columns):
            columns = columns + [f"column_{j + 1}" for j in range(len(columns), len(values))]
        out: Row = dict(zip(columns, values, strict=False))
        if tag is not None:
            out["_sheet"] = tag
        yield out


def _choose_sheets(wb: CalamineWorkbook, wanted: str | None,
                   notes: dict[str, object]) -> tuple[list[str], dict[str, str]]:
    metas = wb.sheets_metadata
    names = [m.name for m in metas]
    skipped: dict[str, str] = {}
    if wanted:
        exact = [n for n in names if n == wanted] or [n for n in names
                                                      if n.lower() == wanted.strip().lower()]
        if not exact:
            raise NoUsableTable(f"no sheet named {wanted!r}; sheets: {', '.join(names)}")
        notes["why"] = "given by name"
        return exact[:1], skipped
    chosen: list[str] = []
    for m in metas:
        if m.typ != SheetTypeEnum.WorkSheet:
            skipped[m.name] = "not a worksheet"
        elif m.visible != SheetVisibleEnum.Visible:
            skipped[m.name] = "hidden"
        else:
            chosen.append(m.name)
    notes["why"] = "every visible worksheet"
    return chosen, skipped


def read(path: Path | str, options: ReadOptions) -> Iterator[Batch]:
    """Rows of every visible sheet (or the sheet options.table), options.batch_rows at a time."""
    p = Path(path)
    kind = _check_container(p)
    try:
        wb = CalamineWorkbook.from_path(str(p))
    except (CalamineError, OSError, ValueError) as exc:
        raise UnreadableFile(f"{p.name} cannot be opened as {kind}: {exc}") from exc
    with wb:
        sheets, skipped = _choose_sheets(wb, options.table, options.notes)
        tagged = len(sheets) > 1
        size = max(1, options.batch_rows)
        batch: Batch = []
        read_sheets: list[str] = []
        total = 0
        for name in sheets:
            n = 0
            try:
                for row in _sheet_rows(wb, name, name if tagged else None):
                    batch.append(row)
                    n += 1
                    if len(batch) >= size:
                        yield batch
                        batch = []
            except CalamineError as exc:
                raise UnreadableFile(f"sheet {name!r} of {p.name} cannot be read: {exc}") from exc
            if n:
                read_sheets.append(name)
                total += n
            else:
                skipped[name] = "empty"
        if batch:
            yield batch
    options.notes["sheets"] = read_sheets
    if len(read_sheets) == 1:
        options.notes["sheet"] = read_sheets[0]
    if skipped:
        options.notes["skipped_sheets"] = skipped
    options.notes["rows"] = total
    if total == 0:
        reasons = ", ".join(f"{k} ({v})" for k, v in skipped.items()) or "none"
        raise EmptyFile(f"{p.name} has no sheet with data to read; skipped sheets: {reasons}")
