"""Finding the files to ingest and fingerprinting them (the registry key is the content hash)."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from recordbank.ingest.errors import IngestError

_CHUNK = 4 * 1024 * 1024


class CopyStopped(Exception):
    """copy_hashed was asked to stop (a shutdown) before the end of its stream."""


def expand_paths(items: Iterable[str]) -> list[Path]:
    """Files, directories (recursively, hidden files skipped) and globs, in a stable order."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and not any(part.startswith(".")
                                                           for part in p.relative_to(path).parts)))
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise IngestError(f"no such file, directory or matching glob: {item}")
            found.extend(matches)
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return list(unique)


def file_checksum(path: Path) -> tuple[str, int]:
    """SHA-256 of the content and its size: the same bytes under any name are the same file."""
    with path.open("rb") as fh:
        return copy_hashed(fh)


def copy_hashed(src: BinaryIO, dest: BinaryIO | None = None,
                stop: Callable[[], bool] | None = None) -> tuple[str, int]:
    """SHA-256 and size of a stream read in blocks, each block also written to `dest` if given,
    so a download is hashed on its way to disk. `stop()` true between blocks raises
    CopyStopped (the caller removes what it wrote)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if dest is not None:
            dest.write(chunk)
        if stop is not None and stop():
            raise CopyStopped("stopped")
    return digest.hexdigest(), size
