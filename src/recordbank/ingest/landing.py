"""Uploads into the landing folder: streamed to disk, hashed on the way, refused early.

An upload never sits in memory. Its bytes go to a temporary file under `<landing>/.incoming/`
in blocks of BLOCK bytes, written (and hashed, SHA-256, the registry key) on a worker thread so
the event loop keeps serving; the body is counted as it arrives, so the size cap holds whatever
Content-Length said. The type is checked as early as each check can run: the content type and
the name's extension before any byte is read, the first bytes (images, executables, archives
the pipeline cannot open) as soon as they arrive, and the pipeline's own detection on the whole
file once it is complete. Only a complete, accepted upload moves (atomically, same filesystem)
to `<landing>/<sha256>/<name>`; anything else removes its temporary file, also when the client
goes away mid-upload. Once its content is ingested, the landed copy is deleted again
(ingest/landed_files.py; not with RECORDBANK_KEEP_LANDED_FILES).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio.to_thread

from recordbank.ingest.compression import sniff_compression
from recordbank.ingest.detect import detect
from recordbank.ingest.errors import EmptyFile, IngestError, UnsupportedFormat
from recordbank.ingest.multipart import (
    MalformedMultipart,
    MultipartParser,
    boundary_of,
    disposition,
)

BLOCK: Final = 1 << 20
SNIFF_BYTES: Final = 512  # enough for every magic number below (tar's sits at 257)
MAX_NAME: Final = 200
INCOMING: Final = ".incoming"
PLACE_ROUNDS: Final = 5
_SHA256: Final = re.compile(r"[0-9a-f]{64}")

DATA_EXTENSIONS: Final = frozenset({".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson",
                                    ".xml", ".parquet", ".xlsx", ".xls", ".sql"})
WRAPPER_EXTENSIONS: Final = frozenset({".gz", ".gzip", ".zip", ".bz2", ".xz", ".lzma", ".zst",
                                       ".zstd"})
# Content types a raw upload may declare, with the extension they imply for a nameless body.
RAW_TYPES: Final[dict[str, str | None]] = {
    "application/octet-stream": None, "binary/octet-stream": None,
    "text/csv": ".csv", "application/csv": ".csv", "text/tab-separated-values": ".tsv",
    "text/plain": ".txt", "application/json": ".json", "text/json": ".json",
    "application/x-ndjson": ".ndjson", "application/ndjson": ".ndjson",
    "application/jsonl": ".jsonl", "application/x-jsonlines": ".jsonl",
    "application/xml": ".xml", "text/xml": ".xml",
    "application/vnd.apache.parquet": ".parquet", "application/x-parquet": ".parquet",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls", "application/sql": ".sql", "application/x-sql": ".sql",
    "application/gzip": ".gz", "application/x-gzip": ".gz", "application/zip": ".zip",
    "application/x-zip-compressed": ".zip", "application/x-bzip2": ".bz2",
    "application/x-xz": ".xz", "application/zstd": ".zst", "application/x-zstd": ".zst",
}
# First bytes of files that are certainly not records (the pipeline refuses them too).
_REFUSED_MAGIC: Final = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\x7fELF", "an executable"), (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "an executable"), (b"\xca\xfe\xba\xbe", "an executable"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database"), (b"\x00asm", "a WebAssembly module"),
    (b"PGDMP", "a PostgreSQL custom-format dump (make a plain one: pg_restore -f dump.sql)"),
    (b"ID3", "an MP3 file"), (b"OggS", "an Ogg media file"),
)


class UploadRefused(Exception):
    """The upload cannot be taken; status and code are the API's answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _too_large(limit: int) -> UploadRefused:
    return UploadRefused(413, "PAYLOAD_TOO_LARGE", f"upload over the limit of {limit:,} bytes")


def _unsupported(message: str) -> UploadRefused:
    return UploadRefused(415, "UNSUPPORTED_MEDIA_TYPE", message)


def _invalid(message: str) -> UploadRefused:
    return UploadRefused(422, "VALIDATION_ERROR", message)


@dataclass(frozen=True)
class Landed:
    path: Path  # <landing>/<checksum>/<file_name>
    file_name: str
    checksum: str
    size: int
    created: bool  # False: the same bytes under the same name were there already (kept)


# --- names and types ---------------------------------------------------------------------------

def clean_name(raw: str) -> str:
    """The last path component, without control characters; refused when nothing is left."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    if name in ("", ".", "..") or name.startswith("."):
        raise _invalid(f"not a usable file name: {raw[:100]!r}")
    if len(name) > MAX_NAME:
        stem, ext = os.path.splitext(name)
        name = stem[: MAX_NAME - len(ext)] + ext
    return name


def check_name(name: str) -> str:
    """415 unless the extension is one the pipeline reads, bare or inside a compression
    wrapper (`people.csv.gz`, `export.zip`)."""
    path = Path(name.lower())
    ext = path.suffix
    if ext in WRAPPER_EXTENSIONS:
        inner = Path(path.stem).suffix
        if inner and inner[1:].isalpha() and inner not in DATA_EXTENSIONS:
            raise _unsupported(f"{name}: {inner} inside {ext} is not a records format")
        return name
    if ext not in DATA_EXTENSIONS:
        raise _unsupported(
            f"{name}: unknown type {ext or '(no extension)'}; expected one of "
            f"{', '.join(sorted(DATA_EXTENSIONS))}, optionally compressed "
            f"({', '.join(sorted(WRAPPER_EXTENSIONS))})")
    return name


def raw_name(content_type: str, file_name: str | None, content_disposition: str | None) -> str:
    """The name of a raw upload: ?filename=, else Content-Disposition, else one made from the
    content type; checked."""
    implied = RAW_TYPES.get(content_type)
    if content_type not in RAW_TYPES:
        raise _unsupported(f"unsupported Content-Type {content_type!r}: send the file as "
                           "application/octet-stream (or its data type) or multipart/form-data")
    name = file_name
    if not name and content_disposition:
        try:
            name = disposition(content_disposition)[1]
        except (ValueError, TypeError):  # an unparseable header: as if absent
            name = None
    if not name:
        if implied is None:
            raise _unsupported("name the file (?filename=people.csv or Content-Disposition) "
                               "so that its type is known")
        name = "upload" + implied
    name = clean_name(name)
    if implied and not Path(name).suffix:
        name += implied
    return check_name(name)


def sniff(head: bytes, name: str) -> None:
    """415 for the first bytes of a file that is certainly not records."""
    if head[257:262] == b"ustar":
        raise _unsupported(f"{name}: a tar archive; unpack it and upload its files")
    for magic, what in _REFUSED_MAGIC:
        if head.startswith(magic) and (magic != b"MZ" or b"\x00" in head[:64]):
            raise _unsupported(f"{name}: {what}, not a records file")


def check_landed(path: Path, name: str) -> None:
    """The pipeline's own detection on a complete plain file (compressed ones are checked
    after unpacking, by the job): 415 for what it would refuse as a format."""
    try:
        if sniff_compression(path) is None:
            detect(path)
    except EmptyFile as exc:
        raise _invalid(f"{name}: the file is empty or holds only whitespace") from exc
    except UnsupportedFormat as exc:
        raise _unsupported(str(exc)) from exc
    except IngestError as exc:
        raise _invalid(str(exc)) from exc


# --- the temporary file ------------------------------------------------------------------------

class _Incoming:
    """One upload's temporary file: bytes hashed and written in blocks off the event loop."""

    def __init__(self, landing: Path, name: str) -> None:
        self.name = name
        self.dir = landing / INCOMING / uuid.uuid4().hex
        self.dir.mkdir(parents=True)
        self.path = self.dir / name  # the real name: detection reads the extension
        self._fh = self.path.open("wb")
        self._digest = hashlib.sha256()
        self._pending = bytearray()
        self._head = bytearray()
        self.size = 0
        self._sniffed = False

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        self._pending += data
        if not self._sniffed:
            self._head += data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._sniff()
        if len(self._pending) >= BLOCK:
            block, self._pending = bytes(self._pending), bytearray()
            await anyio.to_thread.run_sync(self._store, block)

    def _sniff(self) -> None:
        self._sniffed = True
        sniff(bytes(self._head), self.name)

    def _store(self, block: bytes) -> None:
        self._digest.update(block)
        self._fh.write(block)

    async def complete(self, landing: Path) -> Landed:
        if not self._sniffed:
            self._sniff()
        if self.size == 0:
            raise _invalid(f"{self.name}: the upload is empty")
        return await anyio.to_thread.run_sync(self._complete, landing, bytes(self._pending))

    def _complete(self, landing: Path, rest: bytes) -> Landed:
        self._store(rest)
        self._fh.close()
        check_landed(self.path, self.name)
        checksum = self._digest.hexdigest()
        final = landing / checksum / self.name
        created = place(self.path, final)
        self.discard()
        return Landed(final, self.name, checksum, self.size, created)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- receiving ---------------------------------------------------------------------------------

async def _counted(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise _too_large(limit)
        if chunk:
            yield chunk


async def receive(chunks: AsyncIterator[bytes], *, landing: Path, max_bytes: int,
                  content_type: str | None, content_length: str | None = None,
                  content_disposition: str | None = None,
                  file_name: str | None = None) -> Landed:
    """Stream an upload body into the landing folder and return where it landed.

    Raw bodies (application/octet-stream or a data type) carry their name in `file_name` or
    Content-Disposition; multipart/form-data bodies hold one file part (other form fields are
    skipped). Raises UploadRefused (413, 415, 422); the temporary file is gone whatever
    happens, and nothing but a complete, accepted file reaches the landing folder.
    """
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise _too_large(max_bytes)
    media = (content_type or "application/octet-stream").split(";", 1)[0].strip().lower()
    body = _counted(chunks, max_bytes)
    if media == "multipart/form-data":
        try:
            return await _receive_multipart(body, landing, boundary_of(content_type or ""))
        except MalformedMultipart as exc:
            raise _invalid(str(exc)) from exc
    name = raw_name(media, file_name, content_disposition)
    incoming = _Incoming(landing, name)
    try:
        async for chunk in body:
            await incoming.write(chunk)
        return await incoming.complete(landing)
    finally:
        incoming.discard()


async def _receive_multipart(body: AsyncIterator[bytes], landing: Path,
                             boundary: bytes) -> Landed:
    parser = MultipartParser(boundary)
    incoming: _Incoming | None = None
    in_file = False
    try:
        async for chunk in body:
            for kind, value in parser.feed(chunk):
                if kind == "part":
                    assert isinstance(value, dict)
                    _, filename = disposition(value.get("content-disposition", ""))
                    in_file = filename is not None
                    if not in_file:
                        continue  # a plain form field
                    if incoming is not None:
                        raise _invalid("one file per upload: the body holds a second file part")
                    incoming = _Incoming(landing, check_name(clean_name(filename or "")))
                elif kind == "data" and in_file and incoming is not None:
                    assert isinstance(value, bytes)
                    await incoming.write(value)
        parser.close()
        if incoming is None:
            raise _invalid("the multipart body holds no file part (a part with a filename)")
        return await incoming.complete(landing)
    finally:
        if incoming is not None:
            incoming.discard()


def discard(path: Path) -> None:
    """Remove a landed file (and its folder when empty): its upload was not queued."""
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()


# --- the landed file's place and end -----------------------------------------------------------

def place(temp: Path, final: Path) -> bool:
    """Move a complete file to its place `<landing>/<sha256>/<name>`. False, leaving `temp`,
    when a file of that name is there already: it holds the same bytes (the folder is their
    checksum), and a job may be reading it. A cleanup may remove the (empty) folder at the same
    moment (remove_landed): the folder is then made again."""
    for _ in range(PLACE_ROUNDS):
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            return False
        try:
            os.replace(temp, final)
            return True
        except FileNotFoundError:
            if not temp.exists():
                raise
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, final)
    return True


def remove_landed(path: Path, landing: Path, checksum: str) -> int:
    """Delete the landed copies of content that is ingested: every file in its folder
    `<landing>/<checksum>/` (they all hold these bytes, under the names they came with, and
    the UTF-8 copies the pipeline made beside them), then the folder. Nothing outside that
    folder is touched: `path` must be a file in it, or nothing is removed. The number of
    files removed."""
    root = landing.resolve()
    folder = root / checksum
    try:
        where = path.resolve().parent
    except (OSError, RuntimeError):  # a symlink loop: not ours
        return 0
    if not _SHA256.fullmatch(checksum) or where != folder:
        return 0
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    with contextlib.suppress(OSError):
        folder.rmdir()
    return removed
