"""One file through every stage: claim -> open -> read -> map -> transform -> publish.

A run is idempotent: whatever an interrupted attempt of the same job stored is removed before
the job runs again, and publishing a job's rows happens after every check, so killing the
process at any moment and ingesting again ends with the rows of exactly one clean run.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recordbank.ingest import jobs
from recordbank.ingest.bulk import BULK_INSERT
from recordbank.ingest.compression import decompress_to, sniff_compression
from recordbank.ingest.detect import Detected, check_utf8, detect, transcode_to_utf8
from recordbank.ingest.errors import (
    IngestError,
    LeaseLost,
    NoIdentityColumns,
    NoUsableTable,
    UnreadableFile,
    UnsupportedFormat,
)
from recordbank.ingest.loading import (
    Relation,
    csv_relation,
    drop_staging,
    first_line,
    json_fast_relation,
    parquet_relation,
    staged_relation,
)
from recordbank.ingest.mapping import Mapping, SourceConfig, load_mapping_file, map_columns
from recordbank.ingest.publish import publish, publish_lock, unpublish
from recordbank.ingest.readers import reader_for
from recordbank.ingest.readers.base import ReadOptions
from recordbank.ingest.settings import choose_date_order
from recordbank.ingest.sources import file_checksum
from recordbank.ingest.transform import (
    SourceSettings,
    clean_table,
    create_clean_table,
    transform_params,
    transform_sql,
)
from recordbank.runtime import Runtime
from recordbank.schema import IDENTITY_REQUIRED


@dataclass(frozen=True)
class Progress:
    job_id: int
    stage: str  # read | transform | publish
    rows: int  # rows done so far in this stage
    expected: int | None = None  # rows expected, when known or estimated
    rejected: int = 0  # rows quarantined so far


ProgressFn = Callable[[Progress], None]
_MAX_ARCHIVE_DEPTH = 2


@dataclass
class IngestOptions:
    source: str | None = None
    mapping_file: Path | None = None
    format: str | None = None
    table: str | None = None
    date_order: str | None = None
    region: str | None = None
    encoding: str | None = None


@dataclass
class IngestResult:
    job_id: int
    file: str
    status: str  # succeeded | failed | already-ingested | busy
    rows_read: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    error: str | None = None
    error_code: str | None = None
    previous_job: int | None = None
    mapping_report: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


class Ingestor:
    def __init__(self, runtime: Runtime, progress: ProgressFn | None = None,
                 checkpoint: Callable[[], None] | None = None) -> None:
        """checkpoint: called at each stage boundary (before each part, before publishing);
        a queue worker raises JobCancelled or LeaseLost there to stop the job."""
        self.rt = runtime
        self.progress = progress or (lambda *_: None)
        self.checkpoint = checkpoint or (lambda: None)

    def ingest(self, path: Path, options: IngestOptions) -> IngestResult:
        path = Path(path).resolve()
        source = options.source or path.stem
        checksum, size = file_checksum(path)
        claim = jobs.claim_file(self.rt.engine, source=source, path=str(path),
                                file_name=path.name, checksum=checksum, size=size,
                                options=_options_json(options))
        if claim.kind == "already-ingested":
            return IngestResult(claim.job_id, path.name, "already-ingested",
                                previous_job=claim.previous_job)
        if claim.kind == "busy":
            return IngestResult(claim.job_id, path.name, "busy",
                                error=f"job {claim.job_id} is ingesting this file right now")
        return self._run(claim.job_id, path, source, checksum, options,
                         resume=claim.kind == "resume")

    def run_job(self, job_id: int, path: Path, *, source: str, checksum: str,
                options: IngestOptions, resume: bool) -> IngestResult:
        """Run a job the queue handed out (ingest/worker.py): the claim is already made."""
        return self._run(job_id, Path(path), source, checksum, options, resume=resume)

    def _run(self, job_id: int, path: Path, source: str, checksum: str,
             options: IngestOptions, resume: bool) -> IngestResult:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        work = self.rt.settings.work_dir / f"job_{job_id}"
        store, engine = self.rt.store, self.rt.engine
        result = IngestResult(job_id, path.name, "running")
        try:
            if resume:  # an earlier attempt of this job may have left rows and work tables
                self._cleanup(job_id, work)
            work.mkdir(parents=True, exist_ok=True)
            config = load_mapping_file(options.mapping_file) if options.mapping_file else None
            clean = create_clean_table(store, job_id)
            parts = self._open(path, work, options)
            timings["open"] = time.perf_counter() - started
            reports: list[dict[str, Any]] = []
            offset = 0
            for part in parts:
                self.checkpoint()
                t0 = time.perf_counter()
                rel, detected = self._relation(part, job_id, options, config)
                timings["read"] = timings.get("read", 0) + time.perf_counter() - t0
                n_reports = len(reports)
                try:
                    rows = self._map_and_transform(rel, detected, part, job_id, checksum,
                                                   offset, options, config, reports, timings)
                except UnreadableFile:
                    if rel.fallback is None:
                        raise
                    # a record the sampled structure did not foresee: read it the slow way
                    store.command(f"DELETE FROM {clean} WHERE source_row >= {{first:UInt64}}",
                                  parameters={"first": offset})
                    t0 = time.perf_counter()
                    rel = rel.fallback()
                    timings["read"] += time.perf_counter() - t0
                    del reports[n_reports:]
                    rows = self._map_and_transform(rel, detected, part, job_id, checksum,
                                                   offset, options, config, reports, timings)
                offset += rows
                drop_staging(store, job_id)
            result.rows_read = offset  # each part counted the clean table after its insert
            if result.rows_read == 0:
                raise IngestError("the file holds no data rows")
            result.quarantined = int(store.scalar(
                f"SELECT count() FROM {clean} WHERE notEmpty(reasons)"))
            self.checkpoint()  # the last moment to stop: nothing is published yet
            jobs.update_job(engine, job_id, stage="publish")
            self.progress(Progress(job_id, "publish", result.rows_read, result.rows_read,
                                   result.quarantined))
            t0 = time.perf_counter()
            with publish_lock(engine):
                result.inserted = publish(store, clean, rows=result.rows_read, job_id=job_id,
                                          source=source, file_name=path.name)
            timings["publish"] = time.perf_counter() - t0
            result.duplicates = result.rows_read - result.quarantined - result.inserted
            result.seconds = time.perf_counter() - started
            timings["total"] = result.seconds
            result.mapping_report = {"files": reports}
            result.timings = {k: round(v, 3) for k, v in timings.items()}
            jobs.finish_job(engine, job_id, register=True, rows_read=result.rows_read,
                            rows_inserted=result.inserted, rows_duplicate=result.duplicates,
                            rows_quarantined=result.quarantined, timings=timings,
                            mapping_report=result.mapping_report)
            result.status = "succeeded"
            self._drop_work(job_id, work)
            return result
        except LeaseLost:
            raise  # the job is another worker's now: its rows and state are not ours to touch
        except Exception as exc:  # every failure becomes the job's error, rows rolled back
            if isinstance(exc, IngestError):
                code, message = exc.code, str(exc)
            else:
                code, message = "ingest:internal", f"{type(exc).__name__}: {first_line(exc)}"
            try:
                self._cleanup(job_id, work)
            finally:
                result.seconds = time.perf_counter() - started
                jobs.fail_job(engine, job_id, message, code, timings=timings,
                              rows_read=0, rows_inserted=0, rows_duplicate=0,
                              rows_quarantined=0)
            result.status, result.error, result.error_code = "failed", message, code
            return result

    # -- stages -------------------------------------------------------------------------

    def _map_and_transform(self, rel: Relation, detected: Detected, part: Path, job_id: int,
                           checksum: str, offset: int, options: IngestOptions,
                           config: SourceConfig | None, reports: list[dict[str, Any]],
                           timings: dict[str, float]) -> int:
        samples = _sample(rel, self.rt.store, part)
        mapping = map_columns(rel.columns, samples, config)
        _require_identity(mapping, detected.format, rel)
        settings = self._source_settings(options, config, mapping, samples)
        report = mapping.to_dict()
        report.update(file=part.name, format=detected.format, date_order=settings.date_order,
                      region=settings.region, reader=rel.notes, detection=list(detected.notes))
        reports.append(report)
        jobs.update_job(self.rt.engine, job_id, stage="transform", format=detected.format,
                        mapping_report={"files": reports})
        t0 = time.perf_counter()
        rows = self._transform(rel, mapping, settings, clean_table(job_id), job_id, checksum,
                               offset, part)
        timings["transform"] = timings.get("transform", 0) + time.perf_counter() - t0
        return rows

    def _open(self, path: Path, work: Path, options: IngestOptions, depth: int = 0) -> list[Path]:
        """Decompress (with bomb limits) until plain files remain."""
        if options.format and options.format in {"gzip", "zstd", "zip"}:
            raise UnsupportedFormat("--format names the content format, not the compression")
        method = sniff_compression(path)
        if method is None:
            return [path]
        if depth >= _MAX_ARCHIVE_DEPTH:
            raise UnsupportedFormat(f"{path.name}: archives nested deeper than "
                                    f"{_MAX_ARCHIVE_DEPTH} levels")
        dest = work / f"unpacked_{depth}_{path.stem}"
        dest.mkdir(parents=True, exist_ok=True)
        s = self.rt.settings
        members = decompress_to(path, dest, max_bytes=s.max_decompressed_bytes,
                                max_ratio=s.max_compression_ratio)
        if not members:
            raise IngestError(f"{path.name}: the archive holds no files")
        out: list[Path] = []
        for member in members:
            out.extend(self._open(member, work, options, depth + 1))
        return out

    def _relation(self, path: Path, job_id: int, options: IngestOptions,
                  config: SourceConfig | None) -> tuple[Relation, Detected]:
        store = self.rt.store
        detected = detect(path, forced_format=options.format, forced_encoding=options.encoding)
        fmt = detected.format
        table = options.table or (config.table if config else None)
        native = self.rt.settings.native_reads and store.embedded
        if fmt in ("csv", "tsv"):
            if detected.encoding not in (None, "utf-8", "ascii"):
                target = _beside_in_work(path, job_id, self.rt.settings.work_dir)
                path = transcode_to_utf8(path, detected.encoding, target)
                detected.notes.append(f"transcoded from {detected.encoding} to UTF-8")
            elif (bad := check_utf8(path)) is not None:
                # invalid bytes past the detection sample: keep every row, mark the bytes
                target = _beside_in_work(path, job_id, self.rt.settings.work_dir)
                path = transcode_to_utf8(path, "utf-8", target, errors="replace")
                detected.notes.append(f"invalid UTF-8 from byte {bad}: such bytes were "
                                      "replaced by U+FFFD, rows kept")
            delimiter = detected.delimiter or ("\t" if fmt == "tsv" else ",")
            if delimiter == "\t" or not native:  # the engine's CSV reader refuses tabs
                from recordbank.ingest.readers import delimited

                opts = ReadOptions(batch_rows=self.rt.settings.batch_rows, delimiter=delimiter,
                                   quotechar=detected.quotechar or '"',
                                   has_header=detected.has_header,
                                   skip_lines=detected.skip_lines)
                return self._staged(delimited.read, path, job_id, None, opts), detected
            return csv_relation(path, delimiter, detected.has_header, detected.skip_lines,
                                detected.quotechar or '"'), detected
        if native and (fmt == "jsonl" or (fmt == "json" and _first_char(path) == "[")):
            return json_fast_relation(store, path, job_id), detected
        if fmt in ("json", "jsonl"):  # e.g. {"data": [...]}: the Python reader finds the list
            from recordbank.ingest.readers import jsonfile

            return self._staged(jsonfile.read, path, job_id, table), detected
        if fmt == "parquet" and native:
            return parquet_relation(store, path), detected
        reader = reader_for(fmt)
        return self._staged(reader, path, job_id, table), detected

    def _staged(self, reader: Callable[[Path, ReadOptions], Any], path: Path, job_id: int,
                table: str | None, opts: ReadOptions | None = None) -> Relation:
        opts = opts or ReadOptions(batch_rows=self.rt.settings.batch_rows, table=table)
        rel = staged_relation(self.rt.store, job_id, reader(path, opts),
                              on_rows=lambda n: self.progress(Progress(job_id, "read", n)))
        rel.notes = dict(opts.notes)
        return rel

    def _source_settings(self, options: IngestOptions, config: SourceConfig | None,
                         mapping: Mapping, samples: dict[str, list[str | None]]
                         ) -> SourceSettings:
        order = options.date_order or (config.date_order if config else None)
        if not order:
            cols = mapping.fields.get("created_date") or []
            order = choose_date_order(samples.get(cols[0], []) if cols else [])
        region = options.region or (config.region if config else None)
        identity = tuple(config.identity) if config and config.identity else \
            SourceSettings().identity
        return SourceSettings(date_order=order.upper(), region=region.upper() if region else None,
                              identity=identity)

    def _transform(self, rel: Relation, mapping: Mapping, settings: SourceSettings, clean: str,
                   job_id: int, checksum: str, offset: int, part: Path) -> int:
        store = self.rt.store
        before = offset  # the clean table holds exactly the rows of earlier parts
        sql = transform_sql(rel, mapping, settings, clean)
        expected = rel.staged_rows or _estimate_rows(part)
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(job_id, clean, before, expected,
                                                             stop), daemon=True)
        watcher.start()
        try:
            store.command(sql, parameters=transform_params(rel, f"{checksum}:{part.name}",
                                                           row_offset=offset),
                          settings={**rel.settings, **BULK_INSERT, "max_query_size": 16 << 20})
        except Exception as exc:
            raise UnreadableFile(f"{part.name}: cannot read the data ({first_line(exc)})") \
                from exc
        finally:
            stop.set()
            watcher.join()
        return int(store.scalar(f"SELECT count() FROM {clean}")) - before

    def _watch(self, job_id: int, clean: str, before: int, expected: int | None,
               stop: threading.Event) -> None:
        """Report rows transformed so far (parts become visible as the insert commits them)."""
        while not stop.wait(0.5):
            try:
                total, rejected = self.rt.store.rows(
                    f"SELECT count(), countIf(notEmpty(reasons)) FROM {clean}")[0]
            except Exception:  # noqa: BLE001 - progress is best effort
                return
            done = int(total) - before
            self.progress(Progress(job_id, "transform", done, expected, int(rejected)))
            try:
                jobs.update_job(self.rt.engine, job_id, rows_read=done)
            except Exception:  # noqa: BLE001
                return

    def _cleanup(self, job_id: int, work: Path) -> None:
        unpublish(self.rt.store, job_id)
        self._drop_work(job_id, work)

    def _drop_work(self, job_id: int, work: Path) -> None:
        self.rt.store.command(f"DROP TABLE IF EXISTS {clean_table(job_id)}")
        drop_staging(self.rt.store, job_id)
        shutil.rmtree(work, ignore_errors=True)


def _require_identity(mapping: Mapping, fmt: str, rel: Relation) -> None:
    """A file none of whose columns can name a person would only fill the quarantine."""
    if any(mapping.fields.get(f) for f in IDENTITY_REQUIRED):
        return
    where = f"table {rel.notes['table']!r}" if rel.notes.get("table") else "the file"
    message = (f"no column of {where} maps to {', '.join(IDENTITY_REQUIRED)} "
               f"(columns: {', '.join(rel.columns[:20])}); give a mapping file")
    if fmt in ("mysqldump", "pgdump"):
        raise NoUsableTable(message)
    raise NoIdentityColumns(message)


def _sample(rel: Relation, store: Any, part: Path) -> dict[str, list[str | None]]:
    try:
        return rel.sample(store)
    except IngestError:
        raise
    except Exception as exc:  # the engine could not parse the start of the file
        raise UnreadableFile(f"{part.name}: cannot read the data ({first_line(exc)})") from exc


def _beside_in_work(path: Path, job_id: int, work_dir: Path) -> Path:
    """Where a UTF-8 copy of `path` goes: in the job's work folder (dropped with it), never
    beside a file of the caller's (a watched folder would take the copy for a new file)."""
    work = work_dir / f"job_{job_id}"
    folder = path.parent if path.resolve().is_relative_to(work.resolve()) else work
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{path.name}.utf8"


def _first_char(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1].decode("ascii", "replace")


def _estimate_rows(path: Path) -> int | None:
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return None
    lines = head.count(b"\n")
    if not lines or not head:
        return None
    return max(1, int(size / (len(head) / lines)))


def _options_json(options: IngestOptions) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
            if v is not None}
