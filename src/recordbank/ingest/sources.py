"""Finding the files to ingest and fingerprinting them (the registry key is the content hash)."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterable
from pathlib import Path

from recordbank.ingest.errors import IngestError

_CHUNK = 4 * 1024 * 1024


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
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
