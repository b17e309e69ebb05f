"""`recordbank worker` (ingest queue workers in a process of their own), `recordbank watch` (a
folder) and `recordbank watch-bucket` (an S3-compatible bucket).

With PostgreSQL and a ClickHouse server, run any number of these on any machines. With the
embedded store, `recordbank serve` already runs workers (chDB allows one process per store).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from recordbank.cli.ingest import _runtime, app, console, out, settings_error
from recordbank.config import get_settings
from recordbank.ingest.bucket_location import parse_bucket_url
from recordbank.ingest.watch import FolderWatcher
from recordbank.ingest.worker import Worker, WorkerPool


@app.command()
def worker(
    threads: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once")] = 1,
    lease: Annotated[float, typer.Option(
        min=1, help="Seconds a job stays ours without a heartbeat")] = 30.0,
    poll: Annotated[float, typer.Option(min=0.05, help="Seconds between looks at the queue")]
    = 1.0,
    until_idle: Annotated[bool, typer.Option(
        "--until-idle", help="Exit once no job is due (for batch runs and tests)")] = False,
) -> None:
    """Process queued ingest jobs until stopped (SIGTERM / Ctrl-C finish the running job's
    current stage; a killed worker's jobs resume on another one when their lease runs out)."""
    rt = _runtime()
    if until_idle:
        done = 0
        w = Worker(rt, lease_seconds=lease, poll_seconds=poll)
        while w.run_once() is not None:
            done += 1
        out.print(f"{done} job(s) processed; the queue has nothing due")
        return
    pool = WorkerPool(rt, threads, lease_seconds=lease, poll_seconds=poll)
    stopped = threading.Event()

    def stop(*_: object) -> None:
        pool.stop.set()
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console.print(f"{threads} ingest worker thread(s) running ({pool.workers[0].name}); "
                  "Ctrl-C to stop")
    pool.start()
    stopped.wait()
    pool.close(timeout=lease)


@app.command()
def watch(
    folder: Annotated[Path, typer.Argument(help="The landing folder to scan")],
    once: Annotated[bool, typer.Option("--once", help="Scan once and exit")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between scans")] = 10.0,
    settle: Annotated[float, typer.Option(
        min=0, help="A file must be unchanged this many seconds before it is taken")] = 2.0,
    source: Annotated[str | None, typer.Option(
        help="Source name for the jobs (default: the file's folder name)")] = None,
) -> None:
    """Queue every new file of a folder as an ingest job (workers then ingest it)."""
    rt = _runtime()
    watcher = FolderWatcher(rt.engine, folder, settle_seconds=settle, source=source)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while True:
        found = watcher.scan()
        out.print(f"{len(found.queued)} new file(s) queued, {found.known} already known, "
                      f"{found.waiting} still changing")
        if once or stop.wait(interval):
            return


@app.command("watch-bucket")
def watch_bucket(
    url: Annotated[str | None, typer.Argument(
        help="s3://bucket or s3://bucket/prefix (default: RECORDBANK_BUCKET_URL)")] = None,
    once: Annotated[bool, typer.Option("--once", help="Scan once and exit")] = False,
    interval: Annotated[float | None, typer.Option(
        min=1, help="Seconds between scans (default: RECORDBANK_BUCKET_INTERVAL_SECONDS, 60)")]
    = None,
    source: Annotated[str | None, typer.Option(
        help="Source name for the jobs (default: the key's folder name)")] = None,
) -> None:
    """Download every new object of an S3-compatible bucket and queue it as an ingest job
    (endpoint, region and credentials from RECORDBANK_BUCKET_ENDPOINT_URL, _REGION,
    _ACCESS_KEY_ID, _SECRET_ACCESS_KEY, never the command line; with --once, exit 1 when the
    bucket cannot be listed or some objects could not be downloaded)."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        settings_error(exc)
    if not (url or settings.bucket_url):
        console.print("[red]error:[/red] no bucket: give s3://bucket/prefix or set "
                      "RECORDBANK_BUCKET_URL")
        raise typer.Exit(2)
    try:
        location = parse_bucket_url(url or settings.bucket_url)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    # boto3 takes ~70 ms to import: only this command pays it, not every `recordbank` call
    from recordbank.ingest.bucket_watch import BucketAccess, BucketError, BucketWatcher

    rt = _runtime()
    stop = threading.Event()
    watcher = BucketWatcher(rt.engine, location, rt.settings.resolved_landing_dir(),
                            BucketAccess.from_settings(rt.settings), source=source, stop=stop)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    every = interval or rt.settings.bucket_interval_seconds
    while True:
        try:
            found = watcher.scan()
        except BucketError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            if once:
                raise typer.Exit(1) from None
        else:
            out.print(f"{len(found.queued)} new object(s) queued, {found.known} already known, "
                      f"{found.failed} failed to download, {found.waiting} being taken by "
                      "another watcher", markup=False)
            if once and found.failed:
                raise typer.Exit(1)
        if once or stop.wait(every):
            return
