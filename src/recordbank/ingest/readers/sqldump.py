"""MySQL dumps (mysqldump, Sequel Pro, phpMyAdmin): CREATE TABLE and INSERT ... VALUES, streamed.

The engine can read a MySQL dump natively once it knows the table; this reader finds the tables,
picks the one holding people, and can also stream its rows itself. The file is read through a
bounded window: one extended INSERT may be many MB, but only one value is ever held whole.

Values become text as MySQL would print them: strings unescaped (backslash escapes and ''),
NULL -> None, numbers as written, TRUE/FALSE -> "1"/"0", b'101' -> "5", and hex or _binary
literals -> their text when it is printable UTF-8, else "0x" + lowercase hex.
A db-qualified name (`shop`.`customer`) is the same table as `customer`: one dump, one database.
Statements are split on the current DELIMITER; anything other than CREATE TABLE and INSERT/REPLACE
... VALUES is skipped. INSERT ... SELECT and VALUES holding expressions are reported as problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

from recordbank.ingest.errors import UnreadableFile
from recordbank.ingest.readers import tables
from recordbank.ingest.readers.base import Batch, ReadOptions
from recordbank.ingest.readers.tables import (
    CREATE,
    LOOKAHEAD,
    PROBLEM,
    ROW,
    ByteStream,
    Event,
    Scorer,
    TableInfo,
    TableKey,
)

__all__ = ["TableInfo", "events", "read", "scan_tables"]

_WS = re.compile(rb"(?:\s+|#[^\n]*\n|--(?:[ \t\r][^\n]*)?\n|/\*.*?\*/)*+", re.S)
_IDENT = rb"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_NAME = re.compile(rb"(" + _IDENT + rb")(?:\s*\.\s*(" + _IDENT + rb"))?")
_INSERT = re.compile(rb"(?:INSERT|REPLACE)(?:\s+(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE))*"
                     rb"\s+(?:INTO\s+)?", re.I)
_CREATE = re.compile(rb"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?", re.I)
_DELIM = re.compile(rb"DELIMITER[ \t]+(\S+)[^\n]*(?:\n|$)", re.I)
_COLS = re.compile(rb"\s*\(\s*(" + _IDENT + rb"(?:\s*,\s*" + _IDENT + rb")*)\s*\)")
_COL_ITEM = re.compile(_IDENT)
_VALUES = re.compile(rb"\s*VALUES?\b\s*", re.I)
_VALUE = re.compile(rb"""\s*(?:
    0x([0-9A-Fa-f]*)|[xX]'([0-9A-Fa-f]*)'                    # 1, 2  hex
  | 0b([01]+)|[bB]'([01]*)'                                  # 3, 4  bits
  | (?:_([A-Za-z0-9]+)\s*)?'((?:[^'\\]++|\\.|'')*+)'            # 5 introducer, 6 string
  | "((?:[^"\\]++|\\.|"")*+)"                                  # 7 double-quoted string
  | (NULL)\b                                                 # 8
  | ([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)           # 9 number
  | (TRUE|FALSE)\b                                           # 10
)\s*(?=[,)])""", re.X | re.S | re.I)
# A value that may be longer than the window: grow the window rather than give up.
_LONG = re.compile(rb"\s*(?:_[A-Za-z0-9]+\s*)?['\"]|\s*(?:0x|[xXbB]')")
_ESCAPE_SQ = re.compile(rb"\\(.)|''", re.S)
_ESCAPE_DQ = re.compile(rb'\\(.)|""', re.S)
_OPEN_COMMENT = re.compile(rb"#|/\*|--(?:[ \t\r]|$)")
_BODY_TOKEN = re.compile(rb"[^()'\"`]+|'(?:[^'\\]++|\\.|'')*+'|\"(?:[^\"\\]++|\\.|\"\")*+\""
                         rb"|`(?:[^`]++|``)*+`|[()]", re.S)
_ESCAPES = {b"0": b"\x00", b"b": b"\x08", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"Z": b"\x1a",
            b"%": b"\\%", b"_": b"\\_"}
_SKIP_WORDS = frozenset({b"PRIMARY", b"KEY", b"INDEX", b"UNIQUE", b"CONSTRAINT", b"FOREIGN",
                         b"FULLTEXT", b"SPATIAL", b"CHECK", b"PERIOD"})
_PRINTABLE = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f]*")


def _unescape_match(m: re.Match[bytes]) -> bytes:
    ch = m.group(1)
    if ch is None:
        return m.group(0)[:1]  # '' -> ' and "" -> "
    return _ESCAPES.get(ch, ch)


def _unquote(word: bytes) -> str:
    if word.startswith(b"`"):
        return word[1:-1].replace(b"``", b"`").decode("utf-8", "replace")
    return word.decode("utf-8", "replace")


def _binary_text(raw: bytes) -> str:
    """Printable UTF-8 stays text; anything else is shown as 0x-hex (blobs, hashes)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    return text if _PRINTABLE.fullmatch(text) else "0x" + raw.hex()


@lru_cache(maxsize=8)
def _skip_regex(delim: bytes) -> re.Pattern[bytes]:
    stop = re.escape(delim[:1])
    return re.compile(rb"(?:[^'\"`#/\-" + stop + rb"]+|'(?:[^'\\]++|\\.|'')*+'"
                      rb"|\"(?:[^\"\\]++|\\.|\"\")*+\"|`(?:[^`]++|``)*+`|#[^\n]*\n"
                      rb"|--[^\n]*\n|/\*.*?\*/|-(?!-)|/(?!\*))*+", re.S)


class _Lexer:
    """MySQL statements -> events. pgdump.py subclasses it with PostgreSQL's rules."""

    DIALECT = "MySQL"
    WS = _WS
    OPEN_COMMENT = _OPEN_COMMENT
    NAME = _NAME
    INSERT = _INSERT
    CREATE = _CREATE
    COLS = _COLS
    COL_ITEM = _COL_ITEM
    VALUES = _VALUES
    VALUE = _VALUE
    LONG = _LONG
    BODY_TOKEN = _BODY_TOKEN
    SKIP_WORDS = _SKIP_WORDS
    DELIM = _DELIM

    def __init__(self, stream: ByteStream, decode: Callable[[bytes], str]) -> None:
        self.s = stream
        self.decode = decode
        self.delim = b";"

    def fail(self, what: str) -> UnreadableFile:
        return UnreadableFile(f"{self.DIALECT} dump truncated or malformed at line "
                              f"{self.s.line()}: {what}")

    def skip_ws(self) -> None:
        """Skip blanks and comments (a comment may run past the window: grow it)."""
        s = self.s
        while True:
            s.ensure()
            s.pos = self.WS.match(s.buf, s.pos).end()  # type: ignore[union-attr]
            head = self.OPEN_COMMENT.match(s.buf, s.pos)
            if head is None:
                return
            if s.more():
                continue
            if head.group(0) == b"/*":
                raise self.fail("unterminated /* comment")
            s.pos = len(s.buf)  # a # or -- comment on the last line
            return

    def skip_statement(self) -> None:
        """Consume up to and including the next delimiter outside quotes and comments."""
        s, rx = self.s, self.skip_regex()
        while True:
            s.ensure()
            s.pos = rx.match(s.buf, s.pos).end()  # type: ignore[union-attr]
            if s.pos >= len(s.buf):
                if not s.more():
                    return
                continue
            if s.buf.startswith(self.delim, s.pos):
                s.pos += len(self.delim)
                return
            ch = s.buf[s.pos:s.pos + 1]
            if ch in b"'\"`#-/" and not (s.eof and ch in b"#-"):
                if not s.more():
                    raise self.fail(f"unterminated {ch.decode()}...")
                continue
            s.pos += 1  # first byte of a longer delimiter, or a lone '#'/'-' at EOF

    def name(self) -> TableKey | None:
        s = self.s
        m = self.NAME.match(s.buf, s.pos)
        if not m:
            return None
        s.pos = m.end()
        return self.key([self.unquote(g) for g in m.groups() if g])

    def unquote(self, word: bytes) -> str:
        return _unquote(word)

    def key(self, parts: list[str]) -> TableKey:
        return None, parts[-1]

    def skip_regex(self) -> re.Pattern[bytes]:
        return _skip_regex(self.delim)

    def paren_body(self) -> bytes:
        """After '(': everything up to the matching ')', which is consumed."""
        s = self.s
        while True:
            depth, p = 1, s.pos
            m = None
            while True:
                m = self.BODY_TOKEN.match(s.buf, p)
                if m is None or (m.end() >= len(s.buf) and not s.eof):
                    break
                p = m.end()
                tok = m.group(0)
                if tok == b"(":
                    depth += 1
                elif tok == b")":
                    depth -= 1
                    if depth == 0:
                        body = s.buf[s.pos:p - 1]
                        s.pos = p
                        return body
            if not s.more() and (m is None or m.end() >= len(s.buf)):
                raise self.fail("unterminated CREATE TABLE column list")

    def value(self, m: re.Match[bytes]) -> str | None:
        idx = m.lastindex or 0
        raw = m.group(idx)
        if idx == 6:
            if b"\\" in raw or b"''" in raw:
                raw = _ESCAPE_SQ.sub(_unescape_match, raw)
            intro = m.group(5)
            if intro and intro.lower() == b"binary":
                return _binary_text(raw)
            return self.decode(raw)
        if idx == 9:
            return raw.decode("ascii")
        if idx == 8:
            return None
        if idx == 7:
            if b"\\" in raw or b'""' in raw:
                raw = _ESCAPE_DQ.sub(_unescape_match, raw)
            return self.decode(raw)
        if idx in (1, 2):
            return _binary_text(bytes.fromhex(raw.decode("ascii")))
        if idx in (3, 4):
            return str(int(raw or b"0", 2))
        return "1" if raw.upper() == b"TRUE" else "0"

    def tuple_values(self) -> list[str | None] | None:
        """After '(': the values and the closing ')'; None if they are not plain literals."""
        s = self.s
        rx, convert = self.VALUE, self.value
        out: list[str | None] = []
        buf, pos = s.buf, s.pos
        while True:
            m = rx.match(buf, pos)
            if m is None:
                s.pos = pos
                long_value = self.LONG.match(buf, pos) is not None
                if (long_value or len(buf) - pos < LOOKAHEAD) and s.more():
                    buf, pos = s.buf, s.pos
                    continue
                if long_value and s.eof:
                    raise self.fail("unterminated string or blob in INSERT")
                if s.eof and buf.find(b")", pos) < 0:
                    raise self.fail("INSERT cut off inside a row")
                return None
            out.append(convert(m))
            pos = m.end() + 1
            if buf[pos - 1] == 0x29:  # ')'
                s.pos = pos
                return out

    def insert(self) -> Iterator[Event]:
        s = self.s
        key = self.name()
        if key is None:
            self.skip_statement()
            return
        m = self.COLS.match(s.buf, s.pos)
        cols = None
        if m:
            cols = [self.unquote(w) for w in self.COL_ITEM.findall(m.group(1))]
            s.pos = m.end()
        m = self.VALUES.match(s.buf, s.pos)
        if not m:
            yield PROBLEM, key, f"INSERT without VALUES at line {s.line()} skipped", None
            self.skip_statement()
            return
        s.pos = m.end()
        while True:
            if s.buf[s.pos:s.pos + 1] != b"(":
                self.skip_ws()
                if s.buf[s.pos:s.pos + 1] != b"(":
                    raise self.fail("INSERT statement not terminated" if s.at_end()
                                    else "expected '(' in INSERT VALUES")
            s.pos += 1
            values = self.tuple_values()
            if values is None:
                yield PROBLEM, key, f"VALUES with expressions at line {s.line()} skipped", None
                self.skip_statement()
                return
            yield ROW, key, cols, values
            nxt = s.buf[s.pos:s.pos + 1]
            if nxt != b",":
                self.skip_ws()
                nxt = s.buf[s.pos:s.pos + 1]
            if nxt == b",":
                s.pos += 1
                continue
            if s.buf.startswith(self.delim, s.pos):
                s.pos += len(self.delim)
                return
            if nxt == b"" and s.eof:
                raise self.fail("INSERT statement not terminated")
            self.skip_statement()  # ON DUPLICATE KEY UPDATE ...
            return

    def create(self) -> Iterator[Event]:
        s = self.s
        key = self.name()
        self.skip_ws()
        if key is None or s.buf[s.pos:s.pos + 1] != b"(":
            self.skip_statement()  # CREATE TABLE ... LIKE / AS SELECT
            return
        s.pos += 1
        body = self.paren_body()
        cols = tables.column_names(body, self.COL_ITEM, self.SKIP_WORDS, self.unquote)
        self.skip_statement()
        yield CREATE, key, cols, None

    def events(self) -> Iterator[Event]:
        while True:
            self.skip_ws()
            if self.s.at_end():
                return
            yield from self.statement()

    def statement(self) -> Iterator[Event]:
        """One statement, from its first keyword to its delimiter."""
        s = self.s
        if m := self.INSERT.match(s.buf, s.pos):
            s.pos = m.end()
            yield from self.insert()
        elif m := self.CREATE.match(s.buf, s.pos):
            s.pos = m.end()
            yield from self.create()
        elif m := self.DELIM.match(s.buf, s.pos):
            self.delim = m.group(1)
            s.pos = m.end()
        else:
            self.skip_statement()


def events(path: Path, options: ReadOptions | None = None, *, chunk_size: int = 1 << 20,
           max_window: int = tables.MAX_WINDOW) -> Iterator[Event]:
    """The dump as CREATE / ROW / PROBLEM events, in file order (bounded-memory window)."""
    return tables.lexed_events(_Lexer, path, options, chunk_size=chunk_size,
                               max_window=max_window)


def scan_tables(path: Path | str, options: ReadOptions | None = None) -> list[TableInfo]:
    """Every table in the dump with its columns, row count and first rows (one full pass)."""
    return tables.scan(events(Path(path), options))


def read(path: Path | str, options: ReadOptions, scorer: Scorer | None = None) -> Iterator[Batch]:
    """Rows of options.table, or of the table that best fits the master schema."""
    p = Path(path)
    return tables.read_dump(lambda: events(p, options), options, scorer)
