"""The `recordbank` command."""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from recordbank.ingest import landed_files
from recordbank.ingest.errors import IngestError
from recordbank.ingest.pipeline import IngestOptions, Ingestor, IngestResult
from recordbank.ingest.pipeline import Progress as IngestProgress
from recordbank.ingest.sources import expand_paths
from recordbank.runtime import Runtime, open_runtime
from recordbank.store.client import StoreBusy

app = typer.Typer(help="recordbank: ingest messy contact records into one clean master table.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)
out = Console()


def _runtime() -> Runtime:
    try:
        return open_runtime()
    except ValidationError as exc:
        settings_error(exc)
    except StoreBusy as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(3) from exc


def settings_error(exc: ValidationError) -> NoReturn:
    """A refused setting: one line per variable (the value is never repeated), exit 2."""
    for err in exc.errors():
        name = "RECORDBANK_" + "_".join(str(p) for p in err["loc"]).upper()
        why = err["msg"].removeprefix("Value error, ")
        console.print(f"[red]error:[/red] {escape(name)}: {escape(why)}")
    raise typer.Exit(2) from None


class _ProgressView:
    """Rows/s, ETA and stage per file, fed by the pipeline's progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.started = time.perf_counter()

    def start(self, name: str) -> None:
        self.started = time.perf_counter()
        self.task = self.progress.add_task(name, total=None, rate="", stage="start")

    def __call__(self, p: IngestProgress) -> None:
        if self.task is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        total = max(p.expected, p.rows) if p.expected else None
        self.progress.update(self.task, completed=p.rows, total=total,
                             stage=f"{p.stage}, {p.rejected:,} rejected",
                             rate=f"{p.rows / elapsed:,.0f} rows/s")

    def finish(self, result: IngestResult) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=result.rows_read or 1,
                                 total=result.rows_read or 1, stage=result.status,
                                 rate=f"{result.rows_per_second:,.0f} rows/s")


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, directories or globs")],
    source: Annotated[str | None, typer.Option(help="Source name (default: file name)")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Mapping file (YAML or JSON)")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Force the format")] = None,
    table: Annotated[str | None, typer.Option(help="Dump table / sheet / XML element")] = None,
    date_order: Annotated[str | None, typer.Option(help="DMY, MDY or YMD")] = None,
    region: Annotated[str | None, typer.Option(help="Default phone region (ISO alpha-2)")] = None,
    encoding: Annotated[str | None, typer.Option(help="Force the text encoding")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
) -> None:
    """Ingest files into the master table and print a summary."""
    if date_order and date_order.upper() not in ("DMY", "MDY", "YMD"):
        raise typer.BadParameter("--date-order must be DMY, MDY or YMD")
    try:
        files = expand_paths(paths)
    except IngestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if not files:
        console.print("[red]error:[/red] no files to ingest")
        raise typer.Exit(2)
    rt = _runtime()
    options = IngestOptions(source=source, mapping_file=mapping, format=format, table=table,
                            date_order=date_order, region=region, encoding=encoding)
    results = run_ingest(rt, files, options, quiet=quiet or as_json)
    if as_json:
        sys.stdout.write(json.dumps([asdict(r) for r in results], default=str) + "\n")
    else:
        print_summary(results)
    if any(r.status in ("failed", "busy") for r in results):
        raise typer.Exit(1)


def run_ingest(rt: Runtime, files: list[Path], options: IngestOptions,
               quiet: bool = False) -> list[IngestResult]:
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed:,} rows"), TextColumn("{task.fields[rate]}"),
                        TextColumn("{task.fields[stage]}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, disable=quiet)
    view = _ProgressView(progress)
    ingestor = Ingestor(rt, progress=view)
    results = []
    with progress:
        for path in files:
            view.start(path.name)
            result = ingestor.ingest(path, options)
            view.finish(result)
            results.append(result)
            if result.status == "succeeded":  # copies failed uploads of it left are not needed
                landed_files.drop_quietly(rt.engine, rt.settings, result.job_id)
    return results


def print_summary(results: list[IngestResult]) -> None:
    table = Table(title="Ingest summary")
    for col in ("job", "file", "status", "read", "inserted", "duplicates", "quarantined",
                "rows/s"):
        table.add_column(col, justify="right" if col not in ("file", "status") else "left")
    for r in results:
        table.add_row(str(r.job_id), r.file, r.status, f"{r.rows_read:,}", f"{r.inserted:,}",
                      f"{r.duplicates:,}", f"{r.quarantined:,}", f"{r.rows_per_second:,.0f}")
    out.print(table)
    for r in results:
        if r.status == "already-ingested":
            out.print(f"job {r.job_id}: {r.file}: already ingested by job {r.previous_job} "
                      "(same content), nothing to do")
        if r.error:
            out.print(f"[red]job {r.job_id} ({r.file}):[/red] {r.error}")
        for f in r.mapping_report.get("files", []):
            reader = f.get("reader") or {}
            if reader.get("table"):
                out.print(f"job {r.job_id}: {f['file']}: read table [bold]{reader['table']}[/bold]"
                          f" — {reader.get('why', '')}")


@app.command("jobs")
def jobs_cmd(
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 20,
    status: Annotated[str | None, typer.Option(help="Only this status")] = None,
) -> None:
    """List ingest jobs."""
    from recordbank.ingest.jobs import list_jobs

    rt = _runtime()
    table = Table(title="Ingest jobs")
    for col in ("id", "status", "source", "file", "read", "inserted", "dups", "quarantined",
                "created"):
        table.add_column(col)
    for j in list_jobs(rt.engine, limit=limit, status=status):
        table.add_row(str(j.id), j.status + (f" (dup of {j.duplicate_of})" if j.duplicate_of
                                             else ""),
                      j.source, j.file_name, f"{j.rows_read:,}", f"{j.rows_inserted:,}",
                      f"{j.rows_duplicate:,}", f"{j.rows_quarantined:,}",
                      j.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    out.print(table)


@app.command("job")
def job_cmd(job_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one job with its mapping report."""
    from recordbank.ingest.jobs import get_job

    rt = _runtime()
    job = get_job(rt.engine, job_id)
    if job is None:
        console.print(f"[red]error:[/red] no job {job_id}")
        raise typer.Exit(1)
    data = {c: getattr(job, c) for c in ("id", "status", "stage", "source", "file_name",
                                         "path", "checksum", "size_bytes", "format",
                                         "rows_read", "rows_inserted", "rows_duplicate",
                                         "rows_quarantined", "attempts", "duplicate_of",
                                         "error", "error_code", "created_at", "started_at",
                                         "finished_at", "timings", "options",
                                         "mapping_report")}
    if as_json:
        out.print_json(json.dumps(data, default=str))
        return
    for key, value in data.items():
        if key != "mapping_report" and value is not None:
            out.print(f"[bold]{key}[/bold]: {value}")
    for f in (job.mapping_report or {}).get("files", []):
        table = Table(title=f"Mapping of {f.get('file')} ({f.get('format')}, dates "
                            f"{f.get('date_order')})")
        for col in ("column", "field", "method", "confidence", "note"):
            table.add_column(col)
        for e in f.get("report", []):
            table.add_row(str(e.get("column")), str(e.get("field") or "metadata"),
                          str(e.get("method")), f"{float(e.get('confidence') or 0):.2f}",
                          str(e.get("note") or ""))
        out.print(table)
        if f.get("reader"):
            out.print(f"reader: {f['reader']}")


@app.command()
def quarantine(
    job_id: int,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows (0 = all)")] = 0,
) -> None:
    """Show the rows a job rejected, with reasons and raw values."""
    rt = _runtime()
    sql = ("SELECT source_row, reasons, raw FROM quarantine WHERE job_id = {job:UInt64} "
           "ORDER BY source_row")
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = rt.store.rows(sql, {"job": job_id})
    if as_csv:
        keys: list[str] = []
        for _, _, raw in rows:
            keys.extend(k for k in raw if k not in keys)
        writer = csv.writer(sys.stdout)
        writer.writerow(["source_row", "reasons", *keys])
        for row_no, reasons, raw in rows:
            writer.writerow([row_no, ";".join(reasons),
                             *(_safe_cell(raw.get(k, "")) for k in keys)])
        return
    table = Table(title=f"Quarantine of job {job_id} ({len(rows)} rows)")
    table.add_column("row")
    table.add_column("reasons")
    table.add_column("raw values")
    for row_no, reasons, raw in rows[:200]:
        table.add_row(str(row_no), ", ".join(reasons),
                      "; ".join(f"{k}={v}" for k, v in raw.items() if v)[:200])
    out.print(table)


def _safe_cell(value: str) -> str:
    """Neutralize cells a spreadsheet would run as a formula."""
    if value and value[0] in "=+-@\t\r" and not _plain_number(value):
        return "'" + value
    return value


def _plain_number(value: str) -> bool:
    try:
        float(value.replace(" ", ""))
    except ValueError:
        return False
    return True


@app.command()
def demo(
    rows: Annotated[int, typer.Option(help="Rows per sample file")] = 2000,
    dest: Annotated[Path, typer.Option(help="Where to write the sample")] = Path(
        "data/demo-sample"),
) -> None:
    """Generate a small messy sample in several formats and ingest it."""
    from recordbank.sample import write_demo_sample

    rt = _runtime()
    files = write_demo_sample(dest, rows_per_file=rows)
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    mappings = {f["name"]: f.get("mapping") for f in manifest["files"]}
    out.print(f"Wrote {len(files)} messy sample files to {dest}/ "
              f"({', '.join(f.name for f in files)})")
    results = []
    for f in files:
        opts = IngestOptions(source="demo")
        if mappings.get(f.name):
            opts.mapping_file = dest / mappings[f.name]
        results.extend(run_ingest(rt, [f], opts))
    print_summary(results)
    total = rt.store.scalar("SELECT count() FROM records WHERE source = 'demo'")
    expected = manifest["expected"]
    out.print(f"\nThe master table holds [bold]{total:,}[/bold] demo records "
              f"(the generator planted {expected['unique']:,} distinct people, "
              f"{expected['duplicates']:,} duplicates and {expected['quarantined']:,} rows "
              "with no identity).")
    sample = rt.store.rows("SELECT name, email, phone, country, created_date, status, "
                           "round(data_quality_score, 2) FROM records WHERE source = 'demo' "
                           "ORDER BY job_id, source_row LIMIT 8")
    table = Table(title="A few clean records")
    for col in ("name", "email", "phone", "country", "created_date", "status", "quality"):
        table.add_column(col)
    for r in sample:
        table.add_row(*(str(v) for v in r))
    out.print(table)
    out.print("Next: [bold]recordbank jobs[/bold], [bold]recordbank job ID[/bold] (mapping "
              "report), [bold]recordbank quarantine ID[/bold].")
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


