"""`recordbank worker` (ingest queue workers in a process of their own) and `recordbank watch`.

With PostgreSQL and a ClickHouse server, run any number of these on any machines. With the
embedded store, `recordbank serve` already runs workers (chDB allows one process per store).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from recordbank.cli.ingest import _runtime, app, console, out
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
