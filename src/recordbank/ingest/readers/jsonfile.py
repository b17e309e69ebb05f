"""Python fallback reader for JSON: arrays, JSON lines, and arrays wrapped in an object.

Used when the engine's own JSON input cannot take the file (wrapped arrays, odd encodings,
nested objects to flatten). Memory stays bounded by one record plus one batch: arrays are read
element by element over a sliding buffer with ``json.JSONDecoder.raw_decode``, JSON lines line
by line. Errors name the line and character offset so a user can find the bad spot.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any, Final, TextIO

from recordbank.ingest.detect import detect_encoding
from recordbank.ingest.errors import EmptyFile, UnreadableFile, UnsafeFile
from recordbank.ingest.readers.base import Batch, ReadOptions, Row

# Keys that conventionally hold the records in API exports: {"data": [...], "meta": {...}}.
RECORD_KEYS: Final = ("data", "records", "results", "items", "rows")
CHUNK_CHARS: Final = 1 << 20
MAX_RECORD_CHARS: Final = 64 << 20  # one record (or one line) larger than this is refused
_WS: Final = re.compile(r"[ \t\r\n\ufeff]*")


def read(path: str | os.PathLike[str], options: ReadOptions) -> Iterator[Batch]:
    """Yield batches of flat rows; ``options.notes['json_shape']`` says how the file was read.

    ``options.table`` names the key holding the records when a top-level object has several
    lists of objects.
    """
    encoding = options.encoding or _encoding(path)
    options.notes["encoding"] = encoding
    batch: Batch = []
    for record in _records(path, encoding, options):
        batch.append(_row(record, options))
        if len(batch) >= options.batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


def flatten(obj: dict[str, Any], prefix: str = "", out: Row | None = None) -> Row:
    """{"address": {"city": "X"}} -> {"address.city": "X"}; lists become JSON text."""
    row: Row = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flatten(value, name + ".", row)
        else:
            row[name] = scalar(value)
    return row


def scalar(value: Any) -> str | None:
    """JSON value as text: null -> None, true -> "true", containers -> compact JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row(record: Any, options: ReadOptions) -> Row:
    if isinstance(record, dict):
        return flatten(record)
    count = options.notes.get("non_object_records", 0)
    options.notes["non_object_records"] = (count if isinstance(count, int) else 0) + 1
    return {"value": scalar(record)}


def _encoding(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        head = fh.read(65536)
        at_eof = not fh.read(1)
    if not head:
        raise EmptyFile(f"{os.fspath(path)}: the file is empty")
    return detect_encoding(head, at_eof)


def _records(path: str | os.PathLike[str], encoding: str, options: ReadOptions) -> Iterator[Any]:
    """Pick the shape from the first value, then stream its records."""
    with _open(path, encoding) as fh:
        cur = _Cursor(fh)
        first = cur.peek()
        if not first:
            raise EmptyFile(f"{os.fspath(path)}: no JSON content")
        if first == "[":
            options.notes["json_shape"] = "array"
            yield from cur.array()
            cur.expect_end("after the top-level array")
            return
        if first != "{":
            raise cur.error(f"not JSON records: the content starts with {first!r}", cur.pos)
        if cur.first_line_is_object_followed_by_object():
            options.notes["json_shape"] = "lines"
            cur.close()
            yield from _lines(fh)
            return
        found, at_array = _scan_object(cur, options)
        if at_array:  # a known key: stream its array right here (the rest is not read)
            options.notes["json_shape"] = f"wrapped:{found}"
            yield from cur.array()
            return
        if cur.peek():  # more values after the first object: concatenated / pretty JSON lines
            options.notes["json_shape"] = "concatenated"
            fh.seek(0)
            cur = _Cursor(fh)
            while cur.peek():
                yield cur.value()
            return
    if isinstance(found, dict):
        options.notes["json_shape"] = "object"
        yield found
        return
    options.notes["json_shape"] = f"wrapped:{found}"
    with _open(path, encoding) as fh:  # second pass: stream the one list of records
        cur = _Cursor(fh)
        for key in cur.members():
            if key == found:
                yield from cur.array()
                return
            cur.skip()


def _scan_object(cur: _Cursor, options: ReadOptions) -> tuple[str | dict[str, Any], bool]:
    """First pass over a top-level object. Returns (a known record key, True) as soon as one
    is met, the cursor on its array; else, after the whole object, (the only key holding a
    list of objects, False), or (the object itself as one record, False)."""
    want = options.table
    lists: list[str] = []
    whole: dict[str, Any] = {}
    for key in cur.members():
        if cur.peek() != "[":
            whole[key] = cur.value()
            continue
        if key == want or (want is None and key.lower() in RECORD_KEYS):
            options.notes["why"] = f"records under the {key!r} key"
            return key, True
        elements = cur.array()
        head = next(elements, None)
        if isinstance(head, dict):
            lists.append(key)
            for _ in elements:
                pass
        else:
            whole[key] = ([] if head is None else [head]) + list(elements)
    if want is not None:
        raise UnreadableFile(f"the top-level JSON object has no list under the key {want!r}")
    if len(lists) > 1:
        raise UnreadableFile(
            f"keys {', '.join(map(repr, lists))} all hold lists of records; name one as the table"
        )
    if lists:
        options.notes["why"] = f"the only list of objects is under {lists[0]!r}"
        return lists[0], False
    return whole, False


def _lines(fh: TextIO) -> Iterator[Any]:
    """JSON lines: one value per line, blank lines skipped, exact line numbers in errors."""
    fh.seek(0)
    lineno = 0
    while True:
        line = fh.readline(MAX_RECORD_CHARS + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_RECORD_CHARS and not line.endswith("\n"):
            raise UnsafeFile(f"JSON line {lineno} is longer than {MAX_RECORD_CHARS:,} characters")
        text = line.strip().lstrip("\ufeff")
        if not text:
            continue
        try:
            yield json.loads(text)
        except json.JSONDecodeError as exc:
            raise UnreadableFile(
                f"malformed JSON on line {lineno}, column {exc.colno}: {exc.msg}"
            ) from exc
        except RecursionError as exc:
            raise UnsafeFile(f"JSON nested too deeply on line {lineno}") from exc


def _open(path: str | os.PathLike[str], encoding: str) -> TextIO:
    return open(path, encoding=encoding, newline="")  # noqa: SIM115 - caller's `with`


class _Cursor:
    """A sliding text buffer with a position; consumed text is dropped as more is read."""

    def __init__(self, fh: TextIO) -> None:
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.base = 0  # characters dropped before buf[0]
        self.line = 1  # line number of buf[0]
        self.decoder = json.JSONDecoder()

    def close(self) -> None:
        self.buf, self.pos = "", 0

    def _more(self, want: int = CHUNK_CHARS) -> bool:
        if self.eof:
            return False
        try:
            data = self.fh.read(want)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"the file is not valid text in its encoding: {exc}") from exc
        if not data:
            self.eof = True
            return False
        if self.pos:
            self.line += self.buf.count("\n", 0, self.pos)
            self.base += self.pos
            self.buf, self.pos = self.buf[self.pos:], 0
        self.buf += data
        return True

    def peek(self) -> str:
        """The next non-blank character without consuming it; '' at the end of the file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def error(self, msg: str, pos: int) -> UnreadableFile:
        line = self.line + self.buf.count("\n", 0, pos)
        return UnreadableFile(
            f"malformed JSON at line {line} (character {self.base + pos:,}): {msg}"
        )

    def value(self) -> Any:
        """Decode one value at the cursor, reading more text while it is cut off."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(self.buf) - 64 or exc.msg.startswith("Unterminated string")
                if cut and not self.eof:
                    if len(self.buf) - self.pos > MAX_RECORD_CHARS:
                        raise UnsafeFile(
                            f"a JSON record over {MAX_RECORD_CHARS:,} characters "
                            f"(at character {self.base + self.pos:,})"
                        ) from exc
                    self._more(max(CHUNK_CHARS, len(self.buf) - self.pos))
                    continue
                if cut:
                    raise self.error(f"the file ends inside a value ({exc.msg})", exc.pos) from exc
                raise self.error(exc.msg, exc.pos) from exc
            except RecursionError as exc:
                raise UnsafeFile("JSON nested too deeply") from exc
            if end == len(self.buf) and self._more():
                continue  # a number at the buffer's end may go on: decode again
            self.pos = end
            return value

    def array(self) -> Iterator[Any]:
        """Elements of the array at the cursor, one at a time."""
        if self.peek() != "[":
            raise self.error("expected an array", self.pos)
        self.pos += 1
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            c = self.peek()
            self.pos += 1
            if c == "]":
                return
            if c != ",":
                raise self.error("expected ',' or ']' after an array element"
                                 if c else "the file ends inside an array", self.pos - 1)

    def members(self) -> Iterator[str]:
        """Keys of the object at the cursor; the consumer reads or skips each value."""
        if self.peek() != "{":
            raise self.error("expected an object", self.pos)
        self.pos += 1
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self.error("expected a key in double quotes", self.pos)
            key = self.value()
            if self.peek() != ":":
                raise self.error("expected ':' after a key", self.pos)
            self.pos += 1
            yield key  # the consumer reads or skips the value before resuming
            c = self.peek()
            self.pos += 1
            if c == "}":
                return
            if c != ",":
                raise self.error("expected ',' or '}' after a value"
                                 if c else "the file ends inside an object", self.pos - 1)

    def skip(self) -> None:
        """Consume one value; arrays element by element so a huge list is never held."""
        if self.peek() == "[":
            for _ in self.array():
                pass
        else:
            self.value()

    def expect_end(self, where: str) -> None:
        if self.peek():
            raise self.error(f"unexpected content {where}", self.pos)

    def first_line_is_object_followed_by_object(self) -> bool:
        """JSON lines test: the first line alone is an object and the next value starts '{'."""
        self.peek()
        newline = self.buf.find("\n", self.pos)
        if newline < 0:
            return False
        try:
            first = json.loads(self.buf[self.pos:newline])
        except (ValueError, RecursionError):
            return False
        if not isinstance(first, dict):
            return False
        rel = newline - self.pos
        while not self.buf[self.pos + rel:].strip() and self._more():
            pass
        return self.buf[self.pos + rel:].lstrip().startswith("{")
