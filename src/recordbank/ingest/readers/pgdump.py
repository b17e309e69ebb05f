"""PostgreSQL plain-text dumps (pg_dump): COPY ... FROM stdin blocks and INSERT statements.

The engine has no PostgreSQL dump format, so rows stream through here: COPY data lines are split
on tabs (\\N = NULL, backslash escapes including octal and \\x), INSERT values follow SQL rules
('' escapes, E'..' strings with backslash escapes, NULL, true/false, '...'::type casts dropped).
Unquoted identifiers fold to lower case, "Quoted Names" keep theirs; a table is keyed by
(schema, name) and can be asked for as "customer" or "public.customer". Table picking, notes and
errors are shared with the MySQL reader (tables.py).
Limits: COPY blocks with options (CSV, custom delimiter) are reported, not read; nested /* */
comments are not supported outside statements pg_dump writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from recordbank.ingest.readers import tables
from recordbank.ingest.readers.base import Batch, ReadOptions
from recordbank.ingest.readers.sqldump import _Lexer
from recordbank.ingest.readers.tables import (
    PROBLEM,
    ROW,
    ByteStream,
    Event,
    Scorer,
    TableInfo,
    TableKey,
)

__all__ = ["TableInfo", "events", "read", "scan_tables"]

_IDENT = rb'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_TYPE = (rb'(?:"[^"]+"|[A-Za-z_][\w.]*)(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone)'
         rb'|\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\)|\s*\[\])*')


def _value_regex(std_strings: bool) -> re.Pattern[bytes]:
    plain = rb"'((?:[^']++|'')*+)'" if std_strings else rb"'((?:[^'\\]++|\\.|'')*+)'"
    return re.compile(rb"\s*(?:[Ee]'((?:[^'\\]++|\\.|'')*+)'"  # 1 E-string
                      rb"|" + plain +  # 2 string
                      rb"|(NULL)\b"  # 3
                      rb"|([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"  # 4 number
                      rb"|(TRUE|FALSE)\b"  # 5
                      rb"|[Bb]'([01]*)'"  # 6 bit string
                      rb"|[Xx]'([0-9A-Fa-f]*)'"  # 7 hex bit string
                      rb")(?:\s*::\s*" + _TYPE + rb")*\s*(?=[,)])", re.S | re.I)


def _skip_regex(std_strings: bool) -> re.Pattern[bytes]:
    plain = rb"'(?:[^']++|'')*+'" if std_strings else rb"'(?:[^'\\]++|\\.|'')*+'"
    return re.compile(rb"(?:[^'\"$\-/;]+|(?<=[^A-Za-z0-9_][Ee])'(?:[^'\\]++|\\.|'')*+'|" + plain
                      + rb"|\"(?:[^\"]++|\"\")*+\"|--[^\n]*\n|/\*.*?\*/|-(?!-)|/(?!\*))*+", re.S)


_VALUE_STD, _VALUE_OFF = _value_regex(True), _value_regex(False)
_SKIP_STD, _SKIP_OFF = _skip_regex(True), _skip_regex(False)
_DOLLAR = re.compile(rb"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_COPY = re.compile(rb"COPY\s+", re.I)
_COPY_REST = re.compile(rb"\s*(?:\(\s*(" + _IDENT + rb"(?:\s*,\s*" + _IDENT + rb")*)\s*\))?"
                        rb"\s*FROM\s+stdin\b([^;]*);[ \t\r]*(?:\n|$)", re.I)
_SET_STD = re.compile(rb"SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)'?", re.I)
_E_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})"
                       rb"|U([0-9A-Fa-f]{8})|(.))|''", re.S)
_COPY_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.S)
_SIMPLE = {b"b": b"\x08", b"f": b"\x0c", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\x0b"}


def _e_unescape(m: re.Match[bytes]) -> bytes:
    octal, hexa, u4, u8, ch = m.groups()
    if octal:
        return bytes([int(octal, 8) & 0xFF])
    if hexa:
        return bytes([int(hexa, 16)])
    if u4 or u8:
        return chr(int(u4 or u8, 16)).encode("utf-8", "replace")
    if ch is None:
        return b"'"  # ''
    return _SIMPLE.get(ch, ch)


def _copy_unescape(m: re.Match[bytes]) -> bytes:
    octal, hexa, ch = m.groups()
    if octal:
        return bytes([int(octal, 8) & 0xFF])
    if hexa:
        return bytes([int(hexa, 16)])
    return _SIMPLE.get(ch, ch)


class _PgLexer(_Lexer):
    """PostgreSQL rules on the MySQL lexer's skeleton (same INSERT loop, same events)."""

    DIALECT = "PostgreSQL"
    WS = re.compile(rb"(?:\s+|--[^\n]*\n|/\*.*?\*/)*+", re.S)
    OPEN_COMMENT = re.compile(rb"/\*|--")
    NAME = re.compile(rb"(" + _IDENT + rb")(?:\s*\.\s*(" + _IDENT + rb"))?(?:\s*\.\s*("
                      + _IDENT + rb"))?")
    INSERT = re.compile(rb"INSERT\s+INTO\s+", re.I)
    CREATE = re.compile(rb"CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMPORARY|TEMP|UNLOGGED)\s+)?"
                        rb"TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?", re.I)
    COLS = re.compile(rb"\s*\(\s*(" + _IDENT + rb"(?:\s*,\s*" + _IDENT + rb")*)\s*\)")
    COL_ITEM = re.compile(_IDENT)
    VALUES = re.compile(rb"\s*(?:OVERRIDING\s+(?:SYSTEM|USER)\s+VALUE\s+)?VALUES\b\s*", re.I)
    VALUE = _VALUE_STD
    LONG = re.compile(rb"\s*[EeBbXx]?'")
    BODY_TOKEN = re.compile(rb"""[^()'"]+|'(?:[^']++|'')*+'|"(?:[^"]++|"")*+"|[()]""")
    SKIP_WORDS = frozenset({b"CONSTRAINT", b"PRIMARY", b"UNIQUE", b"CHECK", b"FOREIGN",
                            b"EXCLUDE", b"LIKE"})

    def __init__(self, stream: ByteStream, decode: Callable[[bytes], str]) -> None:
        super().__init__(stream, decode)
        self.std_strings = True

    def key(self, parts: list[str]) -> TableKey:
        return (parts[-2] if len(parts) > 1 else None), parts[-1]

    def unquote(self, word: bytes) -> str:
        if word.startswith(b'"'):
            return word[1:-1].replace(b'""', b'"').decode("utf-8", "replace")
        return word.decode("utf-8", "replace").lower()

    def skip_statement(self) -> None:
        """Up to and including the next ';' outside quotes, comments and $tag$ bodies."""
        s = self.s
        rx = _SKIP_STD if self.std_strings else _SKIP_OFF
        while True:
            s.ensure()
            s.pos = rx.match(s.buf, s.pos).end()  # type: ignore[union-attr]
            if s.pos >= len(s.buf):
                if not s.more():
                    return
                continue
            ch = s.buf[s.pos:s.pos + 1]
            if ch == b";":
                s.pos += 1
                return
            if ch == b"$":
                self._skip_dollar()
                continue
            if s.more():
                continue
            if ch == b"-":  # a -- comment on the last line
                s.pos = len(s.buf)
                return
            raise self.fail(f"unterminated {ch.decode('latin-1')}...")

    def _skip_dollar(self) -> None:
        s = self.s
        m = _DOLLAR.match(s.buf, s.pos)
        if m is None:
            s.pos += 1  # $1 parameter or a $ inside a word
            return
        tag = m.group(0)
        while (end := s.buf.find(tag, s.pos + len(tag))) < 0:
            if not s.more():
                raise self.fail(f"unterminated {tag.decode('latin-1')} quoted body")
        s.pos = end + len(tag)

    def value(self, m: re.Match[bytes]) -> str | None:
        idx = m.lastindex or 0
        raw = m.group(idx)
        if idx == 2:
            if not self.std_strings and b"\\" in raw:
                return self.decode(_E_ESCAPE.sub(_e_unescape, raw))
            return self.decode(raw.replace(b"''", b"'") if b"''" in raw else raw)
        if idx == 4:
            return raw.decode("ascii")
        if idx == 3:
            return None
        if idx == 1:
            return self.decode(_E_ESCAPE.sub(_e_unescape, raw))
        if idx == 5:
            return raw.decode("ascii").lower()
        if idx == 6:
            return raw.decode("ascii")
        return "".join(f"{int(c, 16):04b}" for c in raw.decode("ascii"))

    def statement(self) -> Iterator[Event]:
        s = self.s
        if m := self.INSERT.match(s.buf, s.pos):
            s.pos = m.end()
            yield from self.insert()
        elif m := _COPY.match(s.buf, s.pos):
            s.pos = m.end()
            yield from self.copy()
        elif m := self.CREATE.match(s.buf, s.pos):
            s.pos = m.end()
            yield from self.create()
        else:
            if m := _SET_STD.match(s.buf, s.pos):
                self.std_strings = m.group(1).lower() == b"on"
                self.VALUE = _VALUE_STD if self.std_strings else _VALUE_OFF
            self.skip_statement()

    def copy(self) -> Iterator[Event]:
        s = self.s
        key = self.name()
        m = _COPY_REST.match(s.buf, s.pos) if key else None
        if key is None or m is None:
            self.skip_statement()  # COPY ... TO, or FROM a server-side file: no data here
            return
        s.pos = m.end()
        cols = [self.unquote(w) for w in self.COL_ITEM.findall(m.group(1))] if m.group(1) else None
        opts = m.group(2).strip()
        readable = not opts or re.fullmatch(rb"(?i)(WITH\s*)?\(?\s*FORMAT\s+text\s*\)?", opts)
        if not readable:
            why = f"COPY with options {opts.decode('latin-1')!r} is not supported"
            yield PROBLEM, key, why, None
        yield from self.copy_lines(key, cols, bool(readable))

    def copy_lines(self, key: TableKey, cols: list[str] | None, readable: bool) -> Iterator[Event]:
        s = self.s
        start_line = s.line()
        while True:
            nl = s.buf.find(b"\n", s.pos)
            if nl < 0:
                if s.more():
                    continue
                if s.pos >= len(s.buf):
                    raise self.fail(f"COPY block for {key[1]} (from line {start_line}) is not "
                                    "terminated by \\.")
                nl = len(s.buf)
            line = s.buf[s.pos:nl]
            s.pos = min(nl + 1, len(s.buf))
            if line.endswith(b"\r"):
                line = line[:-1]
            if line == b"\\.":
                return
            if readable:
                yield ROW, key, cols, self.copy_fields(line)

    def copy_fields(self, line: bytes) -> list[str | None]:
        decode = self.decode
        if b"\\" not in line:
            return list(decode(line).split("\t"))
        out: list[str | None] = []
        for field in line.split(b"\t"):
            if field == b"\\N":
                out.append(None)
            elif b"\\" in field:
                out.append(decode(_COPY_ESCAPE.sub(_copy_unescape, field)))
            else:
                out.append(decode(field))
        return out


def events(path: Path, options: ReadOptions | None = None, *, chunk_size: int = 1 << 20,
           max_window: int = tables.MAX_WINDOW) -> Iterator[Event]:
    """The dump as CREATE / ROW / PROBLEM events, in file order (bounded-memory window)."""
    return tables.lexed_events(_PgLexer, path, options, chunk_size=chunk_size,
                               max_window=max_window)


def scan_tables(path: Path | str, options: ReadOptions | None = None) -> list[TableInfo]:
    """Every table in the dump with its columns, row count and first rows (one full pass)."""
    return tables.scan(events(Path(path), options))


def read(path: Path | str, options: ReadOptions, scorer: Scorer | None = None) -> Iterator[Batch]:
    """Rows of options.table, or of the table that best fits the master schema."""
    p = Path(path)
    return tables.read_dump(lambda: events(p, options), options, scorer)
