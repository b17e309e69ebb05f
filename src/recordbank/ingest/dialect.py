"""CSV dialect from a decoded sample: delimiter, quote, title rows above the header, header.

csv.Sniffer guesses from character frequencies and is often wrong on real exports; here each
candidate delimiter is scored by how consistently it splits records (quote-aware, through the
csv module), which survives quoted delimiters, embedded newlines and ragged rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

DELIMITERS: Final = (",", "\t", ";", "|")
_MAX_RECORDS: Final = 500  # records scored per delimiter
_MAX_TITLE_ROWS: Final = 20


@dataclass
class Dialect:
    delimiter: str = ","
    quotechar: str = '"'
    has_header: bool = False
    skip_lines: int = 0  # physical lines above the header
    notes: list[str] = field(default_factory=list)


Record = tuple[list[str], int]  # fields, line number where the record ends


def _records(text: str, delimiter: str, quotechar: str, at_eof: bool) -> list[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar)
    out: list[Record] = []
    try:
        for row in reader:
            out.append((row, reader.line_num))
            if len(out) >= _MAX_RECORDS:
                return out
    except csv.Error:  # e.g. a field longer than csv.field_size_limit: score what we have
        return out
    return out if at_eof else out[:-1]  # the last record of a cut sample may be partial


def _title_rows(recs: list[Record], width: int) -> int:
    """Leading title/blank rows: at most one non-empty cell, or at most half the fields."""
    n = 0
    while n < min(len(recs) - 1, _MAX_TITLE_ROWS):
        row = recs[n][0]
        if len(row) > width // 2 and sum(1 for c in row if c.strip()) > 1:
            break
        n += 1
    return n if width > 1 else 0


def _score(recs: list[Record]) -> tuple[float, int, int]:
    """(share of rows with the modal field count, that count, title rows) for one dialect.

    Title rows count against the share, so skipping rows cannot make a wrong delimiter win."""
    counts = Counter(len(r) for r, _ in recs if r)
    if not counts:
        return 0.0, 1, 0
    width = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    skip = _title_rows(recs, width)
    body = [r for r, _ in recs[skip:]]
    if width < 2 or not body:
        return 0.0, width, skip
    return sum(1 for r in body if len(r) == width) / len(recs), width, skip


def sniff_dialect(text: str, *, at_eof: bool = True, ext: str = "",
                  tsv_only: bool = False) -> Dialect:
    """Pick delimiter and quote by field-count consistency, then title rows and header.

    ``text`` is the decoded sample; ``at_eof`` False means it was cut from a longer file (its
    last record is ignored); ``ext`` (".tsv", ".psv") only breaks ties.
    """
    found = Dialect()
    quotes = ['"'] if '"' in text or "'" not in text else ['"', "'"]
    delims = ("\t",) if tsv_only else DELIMITERS
    sep = re.match(r"sep=(.)\r?\n", text)  # Excel's "sep=;" first line names the delimiter
    if sep:
        text, delims = text[sep.end():], (sep[1],)
        found.notes.append(f"first line 'sep={sep[1]}' names the delimiter")
    hint = {".tsv": "\t", ".tab": "\t", ".psv": "|"}.get(ext, "")
    best: tuple[tuple[float, bool, bool, int, int], str, str, list[Record], int] | None = None
    for q in quotes:
        for pref, d in enumerate(delims):
            recs = _records(text, d, q, at_eof)
            score, width, skip = _score(recs)
            # Ties: quotes next to the delimiter, tab (commas in TSV cells are common), more
            # columns, the extension's hint, the usual order.
            quoted = text.count(d + q) + text.count(q + d) > 0
            key = (round(score, 2), quoted, d == "\t", width, (d == hint) * 10 - pref)
            if best is None or key > best[0]:
                best = (key, d, q, recs, skip)
    assert best is not None
    (score, _, _, width, _), delim, quote, recs, skip = best
    if score <= 0:
        delim = delims[0] if tsv_only or sep else (hint or ",")
        recs = _records(text, delim, quote, at_eof) or recs
        skip = 0
        found.notes.append(f"no delimiter splits the rows consistently: one column, {delim!r}")
    else:
        found.notes.append(f"delimiter {delim!r}: {width} fields in {score:.0%} of sampled rows")
    found.delimiter, found.quotechar = delim, quote
    found.skip_lines = (recs[skip - 1][1] if skip else 0) + (1 if sep else 0)
    if skip:
        found.notes.append(f"{recs[skip - 1][1]} line(s) above the header skipped (title/blank)")
    found.has_header, why = _has_header([r for r, _ in recs[skip:] if r])
    found.notes.append(why)
    return found


_NUM: Final = re.compile(r"^[-+(]?[$€£¥]?\s?(\d[\d,. ']*|[.,]\d+)([eE][-+]?\d+)?\)?%?$")
_DATE: Final = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d.*)?$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE: Final = re.compile(r"^\+?[\d\s().-]{7,}$")
_BOOL: Final = frozenset({"true", "false", "yes", "no"})


def _kind(value: str) -> str:
    v = value.strip()
    if not v:
        return "empty"
    if _NUM.match(v) or _PHONE.match(v):
        return "number"
    if _DATE.match(v):
        return "date"
    if _EMAIL.match(v):
        return "email"
    if v.lower() in _BOOL:
        return "bool"
    return "text"


def _has_header(rows: list[list[str]]) -> tuple[bool, str]:
    """First row of distinct non-numeric labels, and some column's values are not labels."""
    if not rows:
        return False, "no rows"
    first, data = rows[0], rows[1:51]
    filled = [c.strip() for c in first if c.strip()]
    kinds = [_kind(c) for c in filled]
    if not filled or 2 * len(filled) < len(first):
        return False, "no header: the first row is mostly empty"
    if any(k != "text" for k in kinds):
        bad = next(c for c, k in zip(filled, kinds, strict=True) if k != "text")
        return False, f"no header: the first row holds a data value ({bad!r})"
    if len({c.lower() for c in filled}) < len(filled):
        return False, "no header: the first row repeats a value"
    if not data:
        return True, "header: one row of labels and no data rows"
    for j, label in enumerate(first):
        col = [r[j] for r in data if j < len(r) and r[j].strip()]
        typed = sum(1 for v in col if _kind(v) != "text")
        if col and typed * 2 > len(col):
            return True, f"header: {label!r} is a label above {typed}/{len(col)} typed values"
    for j, label in enumerate(first):
        if label.strip() and any(j < len(r) and r[j].strip() == label.strip() for r in data):
            return False, f"no header: {label!r} repeats as a value below it"
    return True, "header assumed: the first row is distinct labels (all columns are text)"
