"""A watched landing folder: each new file (by content checksum) becomes a queued job.

Files are picked up once they have stopped changing (size and mtime unchanged for
`settle_seconds`), so a file still being copied in is not read half-written; hidden files and
the usual partial-download names are ignored. A file is hashed once per (size, mtime) it shows,
not at every scan; the queue itself makes a content that is already queued or ingested a no-op,
whatever its name. WatchLoop runs any such scanner (this one, ingest/bucket_watch.py's) on an
interval.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Protocol

from sqlalchemy import Engine

from recordbank.ingest import queue
from recordbank.ingest.sources import file_checksum

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp")


@dataclass
class ScanResult:
    queued: list[int] = field(default_factory=list)  # new jobs
    known: int = 0  # files whose content was already queued or ingested
    waiting: int = 0  # files still changing (folder); objects another watcher is taking (bucket)
    failed: int = 0  # files that could not be read or fetched this time (tried again next scan)


class ScanError(Exception):
    """A scan could not run for a reason outside this code (a store unreachable, access
    refused): logged as one line, not a traceback, and the loop tries again."""


class Scanner(Protocol):
    label: str

    def scan(self) -> ScanResult: ...


def ignored(relative: PurePath) -> bool:
    """Hidden (a dot at the start of any part), backup (~) or partial-download names: a file
    (or an object key, relative to where the watch starts) that is not one to take."""
    name = relative.name
    return (name.startswith((".", "~")) or name.lower().endswith(PARTIAL_SUFFIXES)
            or any(part.startswith(".") for part in relative.parts[:-1]))


class FolderWatcher:
    def __init__(self, engine: Engine, folder: Path, *, settle_seconds: float = 2.0,
                 source: str | None = None) -> None:
        """source: the jobs' source name; default the file's parent folder name, so that
        <folder>/crm/export.csv ingests as source "crm" (files at the top: the file stem)."""
        self.engine = engine
        self.folder = Path(folder)
        self.settle_seconds = settle_seconds
        self.source = source
        self.label = f"watched folder {self.folder}"
        self._seen: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns) already queued

    def _source_for(self, path: Path) -> str:
        if self.source:
            return self.source
        parent = path.parent
        return parent.name if parent != self.folder else path.stem

    def scan(self, *, now: float | None = None) -> ScanResult:
        """Queue every settled file not seen before. Missing folder: nothing to do."""
        result = ScanResult()
        if not self.folder.is_dir():
            return result
        at = time.time() if now is None else now
        for path in sorted(self.folder.rglob("*")):
            if ignored(path.relative_to(self.folder)) or not path.is_file() \
                    or path.is_symlink():
                continue
            try:
                st = path.stat()
            except OSError:  # deleted between listing and stat
                continue
            signature = (st.st_size, st.st_mtime_ns)
            if self._seen.get(path) == signature:
                continue
            if at - st.st_mtime < self.settle_seconds or st.st_size == 0:
                result.waiting += 1
                continue
            try:
                checksum, size = file_checksum(path)
            except OSError as exc:
                log.warning("watched folder: cannot read %s: %s", path, exc)
                result.failed += 1
                continue
            if (size, path.stat().st_mtime_ns) != signature:  # changed while hashing
                result.waiting += 1
                continue
            made = queue.enqueue(self.engine, path=str(path.resolve()), file_name=path.name,
                                 source=self._source_for(path), checksum=checksum, size=size,
                                 options={}, origin="folder")
            self._seen[path] = signature
            if made.kind == "queued":
                result.queued.append(made.job_id)
            else:
                result.known += 1
        return result


class WatchLoop:
    """Runs a scanner (a folder, a bucket) every `interval` seconds in a thread of its own (for
    `recordbank serve`). `stop` may be shared with the scanner, so that closing the loop also
    cuts a long scan short."""

    def __init__(self, watcher: Scanner, interval: float, *, name: str = "watch-folder",
                 stop: threading.Event | None = None) -> None:
        self.watcher, self.interval = watcher, interval
        self.stop = stop or threading.Event()
        self._failing: str | None = None  # the last ScanError's text: logged once, not per scan
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def start(self) -> WatchLoop:
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                found = self.watcher.scan()
                if self._failing is not None:
                    log.info("%s: scanning works again", self.watcher.label)
                    self._failing = None
                if found.queued:
                    log.info("%s: %d new file(s) queued", self.watcher.label, len(found.queued))
            except ScanError as exc:
                if str(exc) != self._failing:
                    log.warning("%s: %s (trying again every %g s)", self.watcher.label, exc,
                                self.interval)
                self._failing = str(exc)
            except Exception:  # noqa: BLE001 - the DB may be back at the next scan
                log.exception("scanning the %s failed", self.watcher.label)
            self.stop.wait(self.interval)
