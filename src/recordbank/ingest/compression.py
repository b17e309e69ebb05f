"""Recognize compressed files by their magic bytes and unpack them safely.

Safety is the point: output is streamed in bounded chunks, capped in total size and in
compression ratio (bombs), zip member names cannot escape the destination directory, and a
truncated or corrupt archive is an error rather than a silently shorter file.

Nested archives (a .gz inside a .zip) are written out still compressed; the caller sniffs each
output again and must cap the recursion depth itself (two levels is plenty for real exports).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import BinaryIO, Final, Literal

import zstandard

from recordbank.ingest.errors import UnreadableFile, UnsafeFile, UnsupportedFormat

Compression = Literal["gzip", "zstd", "zip", "bz2", "xz"]

CHUNK: Final = 1 << 20
DEFAULT_MAX_BYTES: Final = 64 << 30  # 64 GiB of output per archive
DEFAULT_MAX_RATIO: Final = 250.0  # text compresses 5-20x; zeros 1000x and more
DEFAULT_RATIO_GRACE: Final = 8 << 20  # tiny files legitimately have huge ratios
MAX_ZIP_MEMBERS: Final = 10_000

_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_EXTENSIONS: Final = {
    "gzip": (".gz", ".gzip", ".tgz"),
    "zstd": (".zst", ".zstd"),
    "bz2": (".bz2",),
    "xz": (".xz", ".lzma"),
    "zip": (".zip",),
}
# OS junk that some zip tools add next to the real content.
_ZIP_JUNK: Final = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.I)


def sniff_compression(path: str | os.PathLike[str]) -> Compression | None:
    """Which compression wraps this file, from its first bytes (the extension is ignored).

    A zip that is really an Office Open XML workbook (.xlsx) is a format, not a compression,
    so it returns None for it.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == _ZSTD_MAGIC:
        return "zstd"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return None if is_ooxml(path) else "zip"
    return None


def is_ooxml(path: str | os.PathLike[str]) -> bool:
    """True for a zip holding an Office Open XML spreadsheet ([Content_Types].xml + xl/)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def decompress_to(
    path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    ratio_grace: int = DEFAULT_RATIO_GRACE,
) -> list[Path]:
    """Unpack ``path`` into files under ``dest_dir`` and return them (zip: one per member).

    Raises UnsafeFile when the total output would pass ``max_bytes`` or, once ``ratio_grace``
    bytes are out, when output/input passes ``max_ratio``; UnreadableFile for a truncated or
    corrupt archive; UnsupportedFormat when the file is not compressed. On any error the files
    written so far are removed, so a failed unpack leaves nothing half-written behind.
    """
    src = Path(path)
    kind = sniff_compression(src)
    if kind is None:
        raise UnsupportedFormat(f"{src.name}: not a gzip, zstd, zip, bz2 or xz file")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    guard = _Guard(src.name, max_bytes, max_ratio, ratio_grace)
    written: list[Path] = []
    try:
        if kind == "zip":
            _unzip(src, dest, guard, written)
        else:
            out = _unique(dest / _stem_name(src.name, kind))
            written.append(out)
            _unpack_stream(src, kind, out, guard)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return written


class _Guard:
    """Counts output against the size cap and the ratio cap, before each chunk is written."""

    def __init__(self, name: str, max_bytes: int, max_ratio: float, grace: int) -> None:
        self.name, self.max_bytes, self.max_ratio, self.grace = name, max_bytes, max_ratio, grace
        self.total = 0

    def admit(self, n: int, out_so_far: int, in_so_far: int) -> None:
        """Raise before writing ``n`` more bytes when that would break a cap."""
        if self.total + n > self.max_bytes:
            raise UnsafeFile(
                f"{self.name}: decompressed output exceeds the {self.max_bytes:,}-byte limit"
            )
        out = out_so_far + n
        if out > self.grace and out > self.max_ratio * max(in_so_far, 1):
            raise UnsafeFile(
                f"{self.name}: compression ratio over {self.max_ratio:g}:1 "
                f"({out:,} bytes from {in_so_far:,}); refusing a likely decompression bomb"
            )
        self.total += n


def _copy(read: Callable[[int], bytes], tell_in: Callable[[], int], out: Path,
          guard: _Guard) -> None:
    """Stream ``read`` into ``out`` chunk by chunk, checking the guard before each write."""
    done = 0
    with open(out, "wb") as fh:
        while True:
            chunk = read(CHUNK)
            if not chunk:
                return
            guard.admit(len(chunk), done, tell_in())
            fh.write(chunk)
            done += len(chunk)


def _unpack_stream(src: Path, kind: Compression, out: Path, guard: _Guard) -> None:
    with open(src, "rb") as raw:
        try:
            if kind == "zstd":
                _check_zstd_frames(raw, src.name)
                raw.seek(0)
            with _reader(kind, raw) as reader:
                _copy(reader.read, raw.tell, out, guard)
        except (EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as exc:
            raise UnreadableFile(f"{src.name}: corrupt or truncated {kind} data ({exc})") from exc


def _reader(
    kind: Compression, raw: BinaryIO
) -> io.BufferedIOBase | zstandard.ZstdDecompressionReader:
    """A decompressing reader whose read(n) returns at most n bytes (bounded memory)."""
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # reads every member
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")  # multi-stream aware
    return lzma.LZMAFile(raw, "rb")


def _check_zstd_frames(fh: BinaryIO, name: str) -> None:
    """Walk zstd frame and block headers (no decompression) so truncation is detected.

    The zstandard stream reader returns a short output without error on a cut-off file; the
    block sizes in the headers tell where each frame must end.
    """
    size = os.fstat(fh.fileno()).st_size
    pos = 0

    def need(n: int) -> bytes:
        b = fh.read(n)
        if len(b) != n:
            raise UnreadableFile(f"{name}: truncated zstd data (ends at byte {size:,})")
        return b

    while pos < size:
        fh.seek(pos)
        magic = need(4)
        if magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50:  # skippable frame
            (skip,) = struct.unpack("<I", need(4))
            pos += 8 + skip
            if pos > size:
                raise UnreadableFile(f"{name}: truncated zstd data (ends at byte {size:,})")
            continue
        if magic != _ZSTD_MAGIC:
            raise UnreadableFile(f"{name}: not zstd data at byte {pos:,}")
        desc = need(1)[0]
        single = bool(desc & 0x20)
        fcs = (0, 2, 4, 8)[desc >> 6] or (1 if single else 0)
        header = 1 + (0 if single else 1) + (0, 1, 2, 4)[desc & 3] + fcs
        pos += 4 + header
        while True:
            fh.seek(pos)
            b0, b1, b2 = need(3)
            bh = b0 | (b1 << 8) | (b2 << 16)
            btype, bsize = (bh >> 1) & 3, bh >> 3
            if btype == 3:
                raise UnreadableFile(f"{name}: corrupt zstd block at byte {pos:,}")
            pos += 3 + (1 if btype == 1 else bsize)
            if pos > size:
                raise UnreadableFile(f"{name}: truncated zstd data (ends at byte {size:,})")
            if bh & 1:
                break
        if desc & 0x04:
            pos += 4
            if pos > size:
                raise UnreadableFile(f"{name}: truncated zstd data (ends at byte {size:,})")


def _unzip(src: Path, dest: Path, guard: _Guard, written: list[Path]) -> None:
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFile(f"{src.name}: corrupt or truncated zip ({exc})") from exc
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir() and not _ZIP_JUNK.search(i.filename)]
        if len(members) > MAX_ZIP_MEMBERS:
            raise UnsafeFile(f"{src.name}: {len(members):,} zip members (limit {MAX_ZIP_MEMBERS})")
        for info in members:
            if info.flag_bits & 0x1:
                raise UnreadableFile(f"{src.name}: member {info.filename!r} is encrypted")
            out = _unique(dest / _safe_member_path(info.filename))
            if not out.resolve().is_relative_to(dest.resolve()):  # e.g. a symlink already there
                raise UnsafeFile(f"{src.name}: member {info.filename!r} escapes the target dir")
            out.parent.mkdir(parents=True, exist_ok=True)
            written.append(out)
            try:
                with zf.open(info) as member:
                    # Ratio per member: its compressed size is what produced its output.
                    _copy(member.read, repeat(info.compress_size).__next__, out, guard)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError,
                    lzma.LZMAError) as exc:
                raise UnreadableFile(
                    f"{src.name}: member {info.filename!r} is corrupt or truncated ({exc})"
                ) from exc


def _safe_member_path(name: str) -> Path:
    """A relative path inside the destination: no '..', no absolute paths, no drive letters."""
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".", "..")]
    parts = [re.sub(r"^[A-Za-z]:", "", p) or "_" for p in parts]
    parts = [re.sub(r"[\x00-\x1f]", "_", p)[-200:] for p in parts]  # keep the extension
    return Path(*parts) if parts else Path("member")


def _stem_name(name: str, kind: Compression) -> str:
    """people.csv.gz -> people.csv; data.tgz -> data.tar; blob -> blob.out."""
    lower = name.lower()
    for ext in _EXTENSIONS[kind]:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)] + (".tar" if ext == ".tgz" else "")
    return name + ".out"


def _unique(path: Path) -> Path:
    """Never overwrite: two zip members may sanitize to the same name."""
    if not path.exists():
        return path
    for i in range(1, 1_000_000):
        candidate = path.with_name(f"{path.stem}.{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise UnsafeFile(f"too many files named like {path.name}")
