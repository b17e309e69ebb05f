"""XML: find the repeating record element and stream its records as flat rows.

Safety first: any DOCTYPE that declares entities (billion laughs, external entities / XXE) is
refused before parsing, and lxml runs with entity resolution, DTD loading and network off. An
entity reference that is still in the tree (declared in an external DTD we never load) is
refused too, rather than silently dropped.

Records: the element that repeats most under one parent in the first part of the file (e.g.
/people/person or /root/records/record), or the element named by options.table. Fields, named
the way a newcomer would guess:
  - child elements by local name, nested ones joined with dots: "address.city";
  - attributes with an "@": "@id" on the record, "address.@type" on a child;
  - a repeated child gets a counter from the second one on: "phone", "phone.2", "phone.3"
    (XML names cannot start with a digit, so these never clash with real elements);
  - empty or whitespace-only elements and xsi:nil="true" -> None; a record that is only text
    (<email>a@b.c</email>) -> one field named after the element.
Memory stays flat: every record is cleared after use and its processed siblings deleted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lxml import etree

from recordbank.ingest.errors import EmptyFile, NoUsableTable, UnreadableFile, UnsafeFile
from recordbank.ingest.readers.base import Batch, ReadOptions, Row

SAMPLE_ELEMENTS = 20_000  # end events looked at to find the record element
PROLOG_LIMIT = 8 * 1024 * 1024  # bytes allowed before the root element
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_SAFE: dict[str, Any] = {"resolve_entities": False, "no_network": True, "load_dtd": False,
                         "huge_tree": False, "dtd_validation": False}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[1] if tag[:1] == "{" else tag


def _prolog_text(fh: IO[bytes]) -> tuple[str, bool]:
    """The text before the root element (decoded well enough to look for declarations), and
    whether a root element was found at all."""
    head = fh.read(64 * 1024)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    elif head.startswith((b"\x00<", b"<\x00")):
        codec = "utf-16-be" if head[:1] == b"\x00" else "utf-16-le"
    else:
        codec = "latin-1"  # ASCII-compatible: markup is ASCII in every such encoding
    data = head
    while True:
        text = data.decode(codec, "replace")
        end = _root_start(text)
        if end is not None:
            return text[:end], True
        more = fh.read(64 * 1024)
        if not more:
            return text, False
        data += more
        if len(data) > PROLOG_LIMIT:
            raise UnsafeFile("XML prolog (before the root element) is over 8 MiB")


def _root_start(text: str) -> int | None:
    """Index of the root element's '<' (None if not within text): skips PIs, comments, DOCTYPE."""
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n\ufeff":
            i += 1
        if i >= len(text):
            return None
        if text.startswith("<?", i):
            j = text.find("?>", i + 2)
            nxt = j + 2
        elif text.startswith("<!--", i):
            j = text.find("-->", i + 4)
            nxt = j + 3
        elif text[i:i + 9].upper() == "<!DOCTYPE":
            j = _doctype_end(text, i)
            nxt = j + 1
        else:
            return i  # the root element, or junk that the parser will report
        if j < 0:
            return None
        i = nxt


def _doctype_end(text: str, i: int) -> int:
    """Index of the DOCTYPE's closing '>' (-1 if beyond text); refuses entity declarations."""
    quote = ""
    depth = 0
    j = i + 9
    while j < len(text):
        c = text[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == ">" and depth <= 0:
            _check_doctype(text[i:j + 1])
            return j
        j += 1
    _check_doctype(text[i:])
    return -1


def _check_doctype(doctype: str) -> None:
    if re.search(r"<!ENTITY", doctype, re.I):
        raise UnsafeFile("XML declares entities in its DOCTYPE (entity expansion and external "
                         "entities are refused)")


def _syntax_error(exc: etree.XMLSyntaxError) -> UnreadableFile:
    line, col = exc.position if exc.position else (exc.lineno, 0)
    msg = str(exc.msg or exc).strip()
    if "Entity" in msg and "not defined" in msg:
        return UnreadableFile(f"XML refers to an undeclared entity at line {line}: {msg}")
    return UnreadableFile(f"malformed XML at line {line}, column {col}: {msg}")


def _detect(path: Path, wanted: str | None) -> tuple[str, tuple[str, ...] | None, str]:
    """(record tag, its path from the root or None, why) from the first SAMPLE_ELEMENTS."""
    stack: list[str] = []
    counters: list[Counter[str]] = []
    best: dict[tuple[tuple[str, ...], str], int] = {}
    first_path: dict[str, tuple[str, ...]] = {}
    ended = 0
    finished = False

    def close(tags: list[str], counter: Counter[str]) -> None:
        for tag, n in counter.items():
            key = (tuple(tags), tag)
            best[key] = max(best.get(key, 0), n)

    with open(path, "rb") as fh:
        try:
            for event, el in etree.iterparse(fh, events=("start", "end"), **_SAFE):
                if not isinstance(el.tag, str):
                    continue
                if event == "start":
                    if counters:
                        counters[-1][el.tag] += 1
                    first_path.setdefault(_local(el.tag), (*stack, el.tag))
                    stack.append(el.tag)
                    counters.append(Counter())
                    continue
                counter = counters.pop()
                stack.pop()
                close(stack + [el.tag], counter)
                ended += 1
                if ended >= SAMPLE_ELEMENTS:
                    break
            else:
                finished = True
        except etree.XMLSyntaxError as exc:
            if ended == 0 and not stack and "Document is empty" in str(exc):
                raise EmptyFile(f"{path.name} holds no XML") from exc
            raise _syntax_error(exc) from exc
    for depth in range(len(counters) - 1, -1, -1):  # elements still open when sampling stopped
        close(stack[:depth + 1], counters[depth])
    if wanted:
        for local, p in first_path.items():
            if wanted in (local, p[-1]):
                return p[-1], p, f"given: {wanted}"
        if finished:
            raise NoUsableTable(f"no <{wanted}> element in the file; elements seen: "
                                f"{', '.join(sorted(first_path)[:30])}")
        return "{*}" + wanted, None, f"given: {wanted}"
    if not best:
        raise EmptyFile(f"{path.name}: the root element holds no records")
    (parent, tag), count = min(best.items(), key=lambda kv: (-kv[1], len(kv[0][0])))
    if count >= 2:
        where = "/" + "/".join(_local(t) for t in parent)
        return tag, (*parent, tag), f"repeats {count} times under {where}"
    return _single_record(first_path)


def _single_record(first_path: dict[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...], str]:
    """No element repeats: the record is the deepest element of the root's single-child chain."""
    paths = sorted(first_path.values(), key=len)
    root = paths[0]
    cur = root
    while True:
        kids = [p for p in paths if len(p) == len(cur) + 1 and p[:len(cur)] == cur]
        if len(kids) != 1:
            break
        grandkids = [p for p in paths if len(p) == len(cur) + 2 and p[:len(cur) + 1] == kids[0]]
        if not grandkids:
            break
        cur = kids[0]
    return cur[-1], cur, "the only record in the file"


def _flatten(el: Any, prefix: str, row: Row) -> None:
    for name, value in el.attrib.items():
        if name == _XSI_NIL:
            continue
        row[f"{prefix}@{_local(name)}"] = value
    seen: dict[str, int] = {}
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            if tag is etree.Entity:
                raise UnsafeFile(f"XML refers to entity {child.text} (line {child.sourceline}), "
                                 "which is never expanded: refused")
            continue  # comments, processing instructions
        name = _local(tag)
        n = seen.get(name, 0) + 1
        seen[name] = n
        key = f"{prefix}{name}" if n == 1 else f"{prefix}{name}.{n}"
        text = child.text
        if text is not None and not text.strip():
            text = None
        if len(child) or child.attrib:
            _flatten(child, key + ".", row)  # its attributes and children
            if len(child) and text is None:
                continue  # a pure container: only its children are fields
            if child.get(_XSI_NIL) == "true":
                text = None
        row[key] = text


def _record(el: Any) -> Row:
    row: Row = {}
    _flatten(el, "", row)
    if not len(el):
        text = el.text
        row[_local(el.tag)] = text if text is not None and text.strip() else None
    return row


def _is_record(el: Any, path: tuple[str, ...] | None) -> bool:
    node = el.getparent()
    if path is None:  # given by name and not seen in the sample: outermost such elements
        local = _local(el.tag)
        while node is not None:
            if isinstance(node.tag, str) and _local(node.tag) == local:
                return False
            node = node.getparent()
        return True
    i = len(path) - 2
    while node is not None:
        if i < 0 or node.tag != path[i]:
            return False
        node = node.getparent()
        i -= 1
    return i < 0


def read(path: Path | str, options: ReadOptions) -> Iterator[Batch]:
    """Records of the XML file as flat rows, options.batch_rows at a time."""
    p = Path(path)
    with open(p, "rb") as fh:
        prolog, has_root = _prolog_text(fh)
    if re.search(r"<!ENTITY", prolog, re.I):
        raise UnsafeFile("XML declares entities before its root element (refused)")
    if not has_root:
        raise EmptyFile(f"{p.name} is empty" if not prolog.strip(" \t\r\n\ufeff\x00")
                        else f"{p.name} has no root element, so no records")
    tag, rec_path, why = _detect(p, options.table)
    options.notes["record_element"] = _local(tag)
    if rec_path:
        options.notes["record_path"] = "/" + "/".join(_local(t) for t in rec_path)
    options.notes["why"] = why
    size = max(1, options.batch_rows)
    batch: Batch = []
    total = 0
    with open(p, "rb") as fh:
        try:
            for _, el in etree.iterparse(fh, events=("end",), tag=tag, **_SAFE):
                if not _is_record(el, rec_path):
                    continue
                batch.append(_record(el))
                el.clear(keep_tail=False)
                parent = el.getparent()
                if parent is not None:
                    while el.getprevious() is not None:
                        del parent[0]
                if len(batch) >= size:
                    total += len(batch)
                    yield batch
                    batch = []
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc) from exc
    total += len(batch)
    if batch:
        yield batch
    options.notes["rows"] = total
    if total == 0:
        raise NoUsableTable(f"no <{_local(tag)}> records found in {p.name}")
