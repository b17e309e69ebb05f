"""What the SQL dump readers share: a bounded byte window, table bookkeeping and the table picker.

A dump holds many tables; the pipeline wants the one that holds people. The dialect lexers
(sqldump.py for MySQL, pgdump.py for PostgreSQL) turn a file into a stream of events; this module
turns events into a scan (``TableInfo`` per table, with a few sample rows), picks a table by how
well its columns fit the master schema, and yields that table's rows in batches.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile, UnsafeFile
from recordbank.ingest.readers.base import Batch, ReadOptions

Value = str | None
Scorer = Callable[[list[str], dict[str, list[Value]]], float]
TableKey = tuple[str | None, str]  # (schema or None, table name)

# Event kinds produced by the dialect lexers.
CREATE = 0  # (CREATE, key, columns)
ROW = 1  # (ROW, key, columns-from-statement or None, values)
PROBLEM = 2  # (PROBLEM, key, message): a statement whose values are not plain literals
Event = tuple[int, TableKey, object, object]

SAMPLE_ROWS = 50
LOOKAHEAD = 64 * 1024  # every token shorter than this is always seen whole
MAX_WINDOW = 256 * 1024 * 1024  # one SQL value (string, blob) may not exceed this


class ByteStream:
    """A window over a binary file that grows only as far as the current token needs.

    Regexes run on ``buf`` from ``pos``; ``more()`` drops consumed bytes and appends the next
    chunk, so memory is bounded by the longest single token, never by the file.
    """

    def __init__(self, fh: BinaryIO, chunk: int = 1 << 20, max_window: int = MAX_WINDOW) -> None:
        self.fh = fh
        self.chunk = chunk
        self.max_window = max_window
        self.buf = b""
        self.pos = 0
        self.eof = False
        self._lines_dropped = 0

    def more(self) -> bool:
        """Append more bytes (at least doubling a long pending token); False at end of file."""
        if self.eof:
            return False
        pending = len(self.buf) - self.pos
        if pending > self.max_window:
            raise UnsafeFile(f"a single SQL value or line near line {self.line()} exceeds "
                             f"{self.max_window // (1 << 20)} MiB")
        data = self.fh.read(max(self.chunk, pending))
        if not data:
            self.eof = True
            return False
        if self.pos:
            self._lines_dropped += self.buf.count(b"\n", 0, self.pos)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        self.buf += data
        return True

    def ensure(self, n: int = LOOKAHEAD) -> bool:
        """At least n bytes past pos, unless the file ends first; True if they are there."""
        while len(self.buf) - self.pos < n:
            if not self.more():
                return False
        return True

    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and not self.ensure(1)

    def line(self, pos: int | None = None) -> int:
        """1-based line number of pos (default: the current position)."""
        at = self.pos if pos is None else pos
        return self._lines_dropped + self.buf.count(b"\n", 0, at) + 1


def decoder(encoding: str | None) -> tuple[Callable[[bytes], str], list[int]]:
    """bytes -> str: the given encoding, or UTF-8 with a per-value cp1252 fallback (counted)."""
    fallbacks = [0]
    if encoding:
        enc = encoding

        def forced(raw: bytes) -> str:
            return raw.decode(enc, "replace")

        return forced, fallbacks

    def utf8(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            fallbacks[0] += 1
            return raw.decode("cp1252", "replace")

    return utf8, fallbacks


def column_names(body: bytes, ident: re.Pattern[bytes], skip_words: frozenset[bytes],
                 unquote: Callable[[bytes], str]) -> list[str]:
    """Column names from the inside of CREATE TABLE (...): first identifier of each item."""
    names: list[str] = []
    for item in split_top_level(body):
        item = item.strip()
        m = ident.match(item)
        if not m:
            continue
        word = m.group(0)
        if word.upper() in skip_words:
            continue
        names.append(unquote(word))
    return names


_ITEM_TOKEN = re.compile(rb"""[^(),'"`]+|'(?:[^'\\]|\\.|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|.""",
                         re.S)


def split_top_level(body: bytes) -> list[bytes]:
    """Split on commas that are outside parentheses and quotes."""
    items: list[bytes] = []
    depth = 0
    start = 0
    for m in _ITEM_TOKEN.finditer(body):
        tok = m.group(0)
        if tok == b"(":
            depth += 1
        elif tok == b")":
            depth -= 1
        elif tok == b"," and depth == 0:
            items.append(body[start:m.start()])
            start = m.end()
    items.append(body[start:])
    return items


@dataclass
class TableInfo:
    """One table seen in a dump: its columns, how many rows it holds, a few of them."""

    name: str
    columns: list[str]
    approx_rows: int = 0
    schema: str | None = None
    samples: dict[str, list[Value]] = field(default_factory=dict)
    problems: int = 0  # statements for this table whose values could not be read
    first_problem: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def resolve_columns(info: TableInfo, stmt_cols: object, n_values: int) -> list[str]:
    if isinstance(stmt_cols, list) and stmt_cols:
        return stmt_cols
    if info.columns and len(info.columns) == n_values:
        return info.columns
    return info.columns or [f"column_{i + 1}" for i in range(n_values)]


class DumpLexer(Protocol):
    def events(self) -> Iterator[Event]: ...


def lexed_events(make_lexer: Callable[[ByteStream, Callable[[bytes], str]], DumpLexer],
                 path: Path, options: ReadOptions | None, *, chunk_size: int,
                 max_window: int) -> Iterator[Event]:
    """A dump file as its lexer's events; the decoding fallbacks it needed go to the
    options' notes."""
    decode, fallbacks = decoder(options.encoding if options else None)
    with open(path, "rb") as fh:
        yield from make_lexer(ByteStream(fh, chunk_size, max_window), decode).events()
    if options is not None and fallbacks[0]:
        options.notes["encoding_fallbacks"] = fallbacks[0]


def scan(events: Iterator[Event]) -> list[TableInfo]:
    """Every table in the dump, with row counts and the first SAMPLE_ROWS rows as samples."""
    tables: dict[TableKey, TableInfo] = {}
    for kind, key, a, b in events:
        info = tables.get(key)
        if info is None:
            info = tables[key] = TableInfo(name=key[1], columns=[], schema=key[0])
        if kind == ROW:
            values = b if isinstance(b, list) else []
            if info.approx_rows < SAMPLE_ROWS:
                cols = resolve_columns(info, a, len(values))
                if not info.columns:
                    info.columns = list(cols)
                for col, val in zip(cols, values, strict=False):
                    info.samples.setdefault(col, []).append(val)
            info.approx_rows += 1
        elif kind == CREATE:
            info.columns = list(a) if isinstance(a, list) else []
        else:
            info.problems += 1
            info.first_problem = info.first_problem or str(a)
    return list(tables.values())


# ---- choosing the table --------------------------------------------------------------------

_FIELD_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern) for name, pattern in {
        "email": r"(e_?)?mail(_?address)?|email_?\d?",
        "name": r"((first|last|full|given|family|middle|sur|customer|contact|display)_?)?name"
                r"|[fl]name|surname|forename",
        "phone": r"(tele)?phone(_?(number|no|\d))?|mobile|cell(_?phone)?|tel",
        "address": r"(street_?|postal_?|mailing_?)?address(_?(line_?)?\d)?|street",
        "city": r"city|town",
        "country": r"country(_?code)?",
        "created_date": r"(create|created|signup|sign_up|registered|registration|join|joined"
                        r"|subscription)(_?(date|at|on|time))?",
        "status": r"status|active|is_active|enabled",
        "user_id": r"(customer|user|person|member|contact|client)_?id",
    }.items()
}


def builtin_score(columns: list[str], samples: dict[str, list[Value]]) -> float:
    """Share of master fields that some column name matches, plus a nudge for '@' in samples.

    Used when recordbank.ingest.mapping.score_fit is not available; 0.0 means 'not people'.
    """
    matched: set[str] = set()
    for col in columns:
        norm = re.sub(r"[^a-z0-9]+", "_", col.lower()).strip("_")
        for fld, rx in _FIELD_PATTERNS.items():
            if rx.fullmatch(norm):
                matched.add(fld)
        values = [v for v in samples.get(col, []) if v]
        if values and sum("@" in v for v in values) > len(values) / 2:
            matched.add("email")
    return len(matched) / len(_FIELD_PATTERNS)


def default_scorer() -> Scorer:
    """The mapping module's score_fit when it exists, else the built-in scorer."""
    try:
        mod = importlib.import_module("recordbank.ingest.mapping")
    except ImportError:
        return builtin_score
    fn = getattr(mod, "score_fit", None)
    return fn if callable(fn) else builtin_score


def pick_table(tables: list[TableInfo], scorer: Scorer | None = None,
               notes: dict[str, object] | None = None) -> TableInfo:
    """The table with rows whose columns best fit the master schema (ties: more rows)."""
    seen = ", ".join(f"{t.qualified} ({t.approx_rows} rows)" for t in tables) or "none"
    candidates = [t for t in tables if t.approx_rows > 0]
    if not candidates:
        raise NoUsableTable(f"the dump holds no table with rows; tables seen: {seen}")
    score = scorer or default_scorer()
    ranked = sorted(((float(score(t.columns, t.samples)), t) for t in candidates),
                    key=lambda st: (-st[0], -st[1].approx_rows, st[1].qualified))
    best_score, best = ranked[0]
    if best_score <= 0.0:
        raise NoUsableTable(f"no table in the dump looks like person records; tables seen: {seen}")
    if notes is not None:
        notes["table"] = best.name
        if best.schema:
            notes["schema"] = best.schema
        runner = ranked[1] if len(ranked) > 1 else None
        notes["why"] = (f"best fit to the master schema: score {best_score:.2f} over "
                        f"{len(candidates)} tables with rows"
                        + (f"; runner-up {runner[1].qualified} {runner[0]:.2f}" if runner else ""))
        notes["scores"] = {t.qualified: round(s, 3) for s, t in ranked[:5]}
        notes["tables"] = [t.qualified for t in tables]
    return best


def matches(key: TableKey, wanted: str) -> bool:
    """'customer', 'public.customer' or any case of either name the table at key."""
    qualified = f"{key[0]}.{key[1]}" if key[0] else key[1]
    w = wanted.strip()
    return w in (key[1], qualified) or w.lower() in (key[1].lower(), qualified.lower())


def read_table(events: Iterator[Event], wanted: str, options: ReadOptions) -> Iterator[Batch]:
    """Rows of the table named ``wanted`` in batches; errors if it is absent or broken."""
    seen: dict[TableKey, int] = {}
    created: dict[TableKey, list[str]] = {}
    hit: dict[TableKey, bool] = {}
    batch: Batch = []
    size = max(1, options.batch_rows)
    total = 0
    cache: tuple[object, int, list[str]] = (None, -1, [])  # statement columns, width -> names
    for kind, key, a, b in events:
        is_target = hit.get(key)
        if is_target is None:
            is_target = hit[key] = matches(key, wanted)
            seen[key] = 0
        if kind == CREATE:
            created[key] = list(a) if isinstance(a, list) else []
            cache = (None, -1, [])
            continue
        if kind == PROBLEM:
            if is_target:
                raise UnreadableFile(f"table {wanted}: {a}")
            continue
        seen[key] += 1
        if not is_target:
            continue
        values: list[Value] = b  # type: ignore[assignment]
        if a is not cache[0] or len(values) != cache[1]:
            info = TableInfo(name=key[1], columns=created.get(key, []), schema=key[0])
            cache = (a, len(values), resolve_columns(info, a, len(values)))
            if len(cache[2]) != len(values):
                raise UnreadableFile(f"table {wanted}: a row has {len(values)} values but the "
                                     f"table has {len(cache[2])} columns (row {seen[key]})")
        batch.append(dict(zip(cache[2], values, strict=True)))
        if len(batch) >= size:
            total += len(batch)
            yield batch
            batch = []
    total += len(batch)
    if batch:
        yield batch
    if not any(hit.values()):
        listing = ", ".join(f"{k[0]}.{k[1]}" if k[0] else k[1] for k in seen) or "none"
        raise NoUsableTable(f"table {wanted!r} is not in the dump; tables seen: {listing}")
    if total == 0:
        raise EmptyFile(f"table {wanted!r} has no rows in the dump")
    options.notes["rows"] = total


def read_dump(open_events: Callable[[], Iterator[Event]], options: ReadOptions,
              scorer: Scorer | None) -> Iterator[Batch]:
    """Named table: one pass. Otherwise scan, pick, note the choice, then read it (two passes)."""
    if options.table:
        options.notes.setdefault("table", options.table)
        options.notes.setdefault("why", "given by name")
        yield from read_table(open_events(), options.table, options)
        return
    tables = scan(open_events())
    best = pick_table(tables, scorer, options.notes)
    yield from read_table(open_events(), best.qualified, options)
