"""Say what a file is from its content: format, text encoding, and the CSV dialect.

Users upload files with wrong or missing extensions, so the bytes decide; the extension only
breaks ties when the content is ambiguous (a single-column text file, equally good delimiters).
Compressed files are the caller's job (see compression.py): they are refused here.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from recordbank.ingest.compression import is_ooxml
from recordbank.ingest.dialect import sniff_dialect
from recordbank.ingest.errors import EmptyFile, UnreadableFile, UnsupportedFormat

FORMATS: Final = (
    "csv", "tsv", "jsonl", "json", "xml", "parquet", "xlsx", "xls", "mysqldump", "pgdump",
)
BINARY_FORMATS: Final = frozenset({"parquet", "xlsx", "xls"})


@dataclass
class Detected:
    """What detect() found; ``notes`` say why, for the job report."""

    format: str
    encoding: str | None = None  # None for binary formats
    delimiter: str | None = None  # csv/tsv only
    quotechar: str | None = None
    has_header: bool = False
    skip_lines: int = 0  # physical lines above the header (titles, blank lines)
    notes: list[str] = field(default_factory=list)


def detect(
    path: str | os.PathLike[str],
    *,
    sample_bytes: int = 1 << 20,
    forced_format: str | None = None,
    forced_encoding: str | None = None,
) -> Detected:
    """Detect from the first ``sample_bytes``; forced values win over what the content says."""
    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        raise EmptyFile(f"{p.name}: the file is empty")
    if forced_format is not None and forced_format not in FORMATS:
        raise UnsupportedFormat(f"unknown format {forced_format!r}; expected one of {FORMATS}")
    with open(p, "rb") as fh:
        sample = fh.read(sample_bytes)
    at_eof = len(sample) >= size
    notes: list[str] = []
    ext = p.suffix.lower()

    if forced_format in BINARY_FORMATS:
        return Detected(forced_format, notes=[f"format {forced_format} given"])
    if forced_format is None:
        binary = _binary_format(p, sample, notes)
        if binary:
            return Detected(binary, notes=notes)

    if forced_encoding:
        try:
            codecs.lookup(forced_encoding)
        except LookupError as exc:
            raise UnsupportedFormat(f"unknown text encoding {forced_encoding!r}") from exc
        encoding = forced_encoding.lower()
        notes.append(f"encoding {forced_encoding} given")
    else:
        encoding = detect_encoding(sample, at_eof, notes)
    text = codecs.getincrementaldecoder(encoding)("replace").decode(sample, final=at_eof)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise EmptyFile(f"{p.name}: the file holds only whitespace")
    if forced_format is None:
        _refuse_binary_text(p.name, text, encoding)
        fmt = _text_format(text, at_eof, ext, notes)
    else:
        fmt = forced_format
        notes.append(f"format {fmt} given")
    det = Detected(fmt, encoding=encoding, notes=notes)
    if fmt in ("csv", "tsv"):
        d = sniff_dialect(text, at_eof=at_eof, ext=ext, tsv_only=forced_format == "tsv")
        det.delimiter, det.quotechar = d.delimiter, d.quotechar
        det.has_header, det.skip_lines = d.has_header, d.skip_lines
        det.notes.extend(d.notes)
        if forced_format is None:
            det.format = "tsv" if d.delimiter == "\t" else "csv"
    return det


# --- binary formats ---------------------------------------------------------------------

_KNOWN_BINARY: Final = (
    (b"\x1f\x8b", "gzip-compressed"), (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"BZh", "bzip2-compressed"), (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"SQLite format 3\x00", "an SQLite database"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"), (b"MZ", "a Windows executable"),
    (b"ORC", "an ORC file"), (b"Obj\x01", "an Avro file"),
    (b"PGDMP", "a PostgreSQL custom-format dump (make a plain one: pg_restore -f dump.sql)"),
)


def _binary_format(p: Path, sample: bytes, notes: list[str]) -> str | None:
    """parquet/xlsx/xls by magic bytes; other known binaries refused with their name."""
    if sample.startswith(b"PAR1"):
        with open(p, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            if fh.read(4) != b"PAR1":
                raise UnreadableFile(f"{p.name}: Parquet file without its footer (truncated?)")
        notes.append("PAR1 magic bytes: parquet")
        return "parquet"
    if sample[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        if is_ooxml(p):
            notes.append("zip holding [Content_Types].xml and xl/: xlsx")
            return "xlsx"
        raise UnsupportedFormat(f"{p.name}: a zip archive (not an .xlsx workbook); unpack first")
    if sample.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        if _ole_has_workbook(p) or p.suffix.lower() == ".xls":
            notes.append("OLE2 compound file with a Workbook stream: xls")
            return "xls"
        raise UnsupportedFormat(f"{p.name}: an OLE2 Office file that is not an Excel workbook")
    if sample[257:262] == b"ustar":
        raise UnsupportedFormat(f"{p.name}: a tar archive; unpack it and ingest its files")
    for magic, what in _KNOWN_BINARY:
        if sample.startswith(magic) and (magic != b"MZ" or b"\x00" in sample[:64]):
            raise UnsupportedFormat(f"{p.name}: {what}, not a records file")
    return None


def _ole_has_workbook(p: Path) -> bool:
    """Read the first directory sector of an OLE2 file and look for a Workbook/Book stream."""
    with open(p, "rb") as fh:
        header = fh.read(512)
        if len(header) < 512:
            return False
        shift, = struct.unpack_from("<H", header, 30)
        first_dir, = struct.unpack_from("<I", header, 48)
        sector = 1 << min(shift, 16)
        fh.seek((first_dir + 1) * sector)
        directory = fh.read(sector)
    names = {directory[i:i + 64].decode("utf-16-le", "replace").split("\x00")[0]
             for i in range(0, len(directory), 128)}
    return bool(names & {"Workbook", "Book"})


# --- encoding -----------------------------------------------------------------------------

def detect_encoding(sample: bytes, at_eof: bool = True, notes: list[str] | None = None) -> str:
    """BOM, else strict UTF-8, else BOM-less UTF-16 (NUL pattern), else cp1252, else latin-1.

    ``at_eof`` False means the sample was cut from a longer file: a character split at its end
    is not an error.
    """
    why = notes if notes is not None else []
    if sample.startswith(b"\xef\xbb\xbf"):
        why.append("UTF-8 byte order mark")
        return "utf-8-sig"
    if sample.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise UnsupportedFormat("UTF-32 text is not supported; re-save as UTF-8")
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        why.append("UTF-16 byte order mark")
        return "utf-16"
    if b"\x00" in sample:
        n = len(sample) // 2
        even, odd = sample[0:2 * n:2].count(0), sample[1:2 * n:2].count(0)
        if odd > 0.3 * n and even < 0.02 * n:
            why.append("NUL in every other byte (odd positions): UTF-16-LE without BOM")
            return "utf-16-le"
        if even > 0.3 * n and odd < 0.02 * n:
            why.append("NUL in every other byte (even positions): UTF-16-BE without BOM")
            return "utf-16-be"
    try:
        codecs.utf_8_decode(sample, "strict", at_eof)
        why.append("sample decodes as UTF-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        why.append("not UTF-8; decodes as cp1252 (Windows Western, a superset of Latin-1)")
        return "cp1252"
    except UnicodeDecodeError:
        why.append("not UTF-8 nor cp1252: latin-1")
        return "latin-1"


_TEXTY: Final = frozenset("€£¥§°·«»–—…‘’“”•")


def _refuse_binary_text(name: str, text: str, encoding: str) -> None:
    """Not text: control characters (bar tab/CR/LF/FF) over 2%, or, for 8-bit encodings that
    decode anything, symbols that are neither letters, digits, spaces nor punctuation over 10%."""
    sample = text[:65536]
    bad = sum(1 for ch in sample if (ch < " " and ch not in "\t\n\r\f\v") or "\x7f" <= ch < "\xa0")
    odd = 0
    if encoding in ("cp1252", "latin-1"):
        odd = sum(1 for ch in sample if ch >= "\x80" and not ch.isalnum() and ch not in _TEXTY)
    if bad > max(2, 0.02 * len(sample)) or odd > 0.1 * len(sample):
        raise UnsupportedFormat(
            f"{name}: binary data of an unknown kind (not text in the first {len(sample):,} "
            "characters); expected CSV, TSV, JSON, XML, Parquet, Excel or an SQL dump"
        )


# --- text formats -------------------------------------------------------------------------

_SQL_START: Final = re.compile(
    r"^(/\*!\d+|SET\s+NAMES\b|SET\s+[\w@.]+\s*(=|TO\b)|INSERT\s+INTO\s|LOCK\s+TABLES\s"
    r"|COPY\s+\S+.*\bFROM\s+stdin|CREATE\s+(TABLE|SCHEMA|DATABASE|INDEX|UNIQUE|SEQUENCE|VIEW"
    r"|EXTENSION|FUNCTION|TYPE|OR\s+REPLACE)\b|DROP\s+(TABLE|SCHEMA|DATABASE|INDEX|SEQUENCE|VIEW)"
    r"\b|ALTER\s+TABLE\s|USE\s+\S+;|BEGIN;|START\s+TRANSACTION|SELECT\s+pg_catalog\.)",
    re.I,
)
_MYSQL_MARKERS: Final = ("-- MySQL dump", "-- MariaDB dump", "/*!40", "LOCK TABLES `",
                         "INSERT INTO `", "ENGINE=", "# Sequel Pro SQL dump", "CREATE TABLE `")
_PG_MARKERS: Final = ("-- PostgreSQL database dump", "SET statement_timeout",
                      "SELECT pg_catalog.set_config", "SET standard_conforming_strings",
                      "FROM stdin;", 'INSERT INTO "', "INSERT INTO public.", "::")


def _text_format(text: str, at_eof: bool, ext: str, notes: list[str]) -> str:
    body = text.lstrip()
    first = body[:1]
    if first == "<":
        head = body[:512].lower()
        if head.startswith(("<!doctype html", "<html")):
            raise UnsupportedFormat("an HTML page, not a data file (a download that failed?)")
        if head.startswith("<?xml") or ("</" in body or "/>" in body):
            notes.append("starts with '<': xml")
            return "xml"
    if first in ("[", "{"):
        kind = _json_kind(body, at_eof, ext, notes)
        if kind:
            return kind
    sql = _sql_kind(body, notes)
    return sql or "csv"


def _json_kind(body: str, at_eof: bool, ext: str, notes: list[str]) -> str | None:
    """json (array / one object) vs jsonl (one object per line, or concatenated objects)."""
    newline = body.find("\n")
    if body[0] == "{" and newline > 0:
        try:
            obj = json.loads(body[:newline])
        except ValueError:
            obj = None
        if isinstance(obj, dict) and body[newline:].lstrip().startswith("{"):
            notes.append("one JSON object per line: jsonl")
            return "jsonl"
    try:
        value, end = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        cut = not at_eof and (exc.pos >= len(body) - 64 or exc.msg.startswith("Unterminated"))
        if cut:
            notes.append(f"starts with {body[0]!r}, one JSON value longer than the sample: json")
            return "json"
        if ext in (".json", ".jsonl", ".ndjson") or re.match(r"^(\[\s*[\[{\"\]]|\{\s*[\"}])", body):
            kind = "jsonl" if ext in (".jsonl", ".ndjson") else "json"
            notes.append(f"looks like JSON but is malformed ({exc}); the reader will report it")
            return kind
        return None
    rest = body[end:].lstrip()
    if rest.startswith("{") and isinstance(value, dict):
        notes.append("several JSON objects one after another: jsonl")
        return "jsonl"
    if isinstance(value, dict) and not _holds_records(value) and "\n" not in body[:end].strip():
        notes.append("a single one-line JSON object: jsonl")
        return "jsonl"
    notes.append("a JSON array" if body[0] == "[" else "a JSON object (wrapped records?)")
    return "json"


def _holds_records(obj: dict[str, object]) -> bool:
    return any(isinstance(v, list) and v and isinstance(v[0], dict) for v in obj.values())


def _sql_kind(body: str, notes: list[str]) -> str | None:
    head = body[:262144]
    strong = any(m in head[:4096] for m in ("-- MySQL dump", "-- MariaDB dump",
                                            "-- PostgreSQL database dump", "# Sequel Pro"))
    statement = None
    for line in head.splitlines()[:300]:
        s = line.strip()
        if not s or s.startswith(("--", "#")) or (s.startswith("/*") and not s.startswith("/*!")):
            continue
        statement = s
        break
    if not strong and not (statement and _SQL_START.match(statement)):
        return None
    mysql = sum(head.count(m) for m in _MYSQL_MARKERS) + head.count("\\'")
    pg = sum(head.count(m) for m in _PG_MARKERS) + 5 * len(
        re.findall(r"^COPY\s+\S+.*FROM\s+stdin;", head, re.M))
    if pg > mysql:
        notes.append(f"SQL with PostgreSQL markers ({pg} vs {mysql} MySQL): pgdump")
        return "pgdump"
    why = f"SQL with MySQL markers ({mysql} vs {pg} PostgreSQL)" if mysql else \
        "SQL without dialect markers, read as MySQL INSERTs"
    notes.append(f"{why}: mysqldump")
    return "mysqldump"


# --- streaming helpers for the caller -----------------------------------------------------------

def check_utf8(path: str | os.PathLike[str], *, chunk_size: int = 4 << 20) -> int | None:
    """Byte offset of the first invalid UTF-8 sequence in the whole file, or None if valid.

    Chunked with the C decoder; a character split across chunks is carried over.
    """
    offset = 0
    carry = b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            final = not chunk
            data = carry + chunk
            try:
                _, used = codecs.utf_8_decode(data, "strict", final)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += used
            carry = data[used:]
            if final:
                return None


def transcode_to_utf8(
    path: str | os.PathLike[str],
    encoding: str,
    dest: str | os.PathLike[str],
    *,
    errors: str = "strict",
    chunk_size: int = 4 << 20,
) -> Path:
    """Stream ``path`` from ``encoding`` into UTF-8 (no BOM) at ``dest``.

    errors="replace" turns undecodable bytes into U+FFFD (the caller reports it); with
    "strict" they raise UnreadableFile giving the byte offset.
    """
    out = Path(dest)
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    offset = 0
    with open(path, "rb") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        first = True
        while True:
            chunk = src.read(chunk_size)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = offset + max(exc.start, 0)
                raise UnreadableFile(f"invalid {encoding} text near byte {at:,}: {exc.reason}") \
                    from exc
            if first and text.startswith("\ufeff"):
                text = text[1:]
            first = first and not text
            dst.write(text)
            offset += len(chunk)
            if not chunk:
                return out
