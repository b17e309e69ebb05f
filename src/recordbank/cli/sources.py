"""`recordbank sources`: scheduled HTTP JSON sources (add, list, run now, enable, remove).

Only the relational DB is opened (a run lands a file and queues a job; workers ingest it), so
these commands work while `recordbank serve` owns the store. A secret is read from an
environment variable, never from the command line (argv is visible to every local user and
lands in shell history), and is shown as "set" or "unset".
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from recordbank.cli.ingest import app, console, out
from recordbank.config import get_settings
from recordbank.db.session import get_engine
from recordbank.ingest import http_sources_model as sources
from recordbank.ingest.http_source import Busy, run_now

sources_app = typer.Typer(help="Scheduled HTTP JSON sources: fetched every interval, each run "
                               "queued as one ingest job.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")

Pagination = typer.Option(help="none | page (page numbers until an empty page) | cursor (from "
                               "--cursor-path until null) | link (Link: rel=\"next\")")


def _engine() -> Engine:
    return get_engine(get_settings().resolved_database_url())


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


def _headers(raw: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise _fail(f"--header {item!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


@sources_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Unique name; also the jobs' source name")],
    url: Annotated[str, typer.Argument(help="The first page's http(s) URL")],
    interval: Annotated[int, typer.Option(help="Seconds between runs")] = 3600,
    records_path: Annotated[str, typer.Option(
        help="Dotted path to the records list in each page, e.g. data.items (default: the "
             "page itself is the list)")] = "",
    pagination: Annotated[str, Pagination] = "none",
    page_param: Annotated[str, typer.Option(help="Query parameter of the page number")]
    = "page",
    page_start: Annotated[int, typer.Option(help="The first page's number")] = 1,
    cursor_param: Annotated[str, typer.Option(help="Query parameter of the cursor")]
    = "cursor",
    cursor_path: Annotated[str, typer.Option(
        help="Dotted path to the next cursor in each page, e.g. meta.next_cursor")] = "",
    max_pages: Annotated[int, typer.Option(help="Stop a run after this many pages")] = 1000,
    header: Annotated[list[str] | None, typer.Option(
        help="'Name: value', repeatable; not secret (shown by `list`)")] = None,
    secret_header: Annotated[str | None, typer.Option(
        help="Header that carries the secret, e.g. Authorization")] = None,
    secret_env: Annotated[str | None, typer.Option(
        help="Environment variable holding the secret header's value, e.g. 'Bearer …'")]
    = None,
    mapping: Annotated[str | None, typer.Option(help="Mapping file (YAML or JSON)")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off")] = False,
) -> None:
    """Add a source; it is due at once (`recordbank serve` runs it, or `sources run NAME`)."""
    secret: str | None = None
    if secret_env is not None:
        secret = os.environ.get(secret_env)
        if not secret:
            raise _fail(f"the environment variable {secret_env} is not set or empty")
    if (secret_header is None) != (secret_env is None):
        raise _fail("--secret-header and --secret-env go together")
    try:
        made = sources.create(
            _engine(), name=name, url=url, interval_seconds=interval,
            records_path=records_path,
            pagination={"type": pagination, "page_param": page_param, "start": page_start,
                        "cursor_param": cursor_param, "cursor_path": cursor_path,
                        "max_pages": max_pages},
            headers=_headers(header or []), secret_header=secret_header, secret=secret,
            mapping_file=mapping, enabled=not disabled)
    except sources.SourceError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"source {made['id']} {made['name']} added "
              f"({'enabled' if made['enabled'] else 'disabled'}, every {interval} s, "
              f"secret {made['secret']})", highlight=False)


def _when(value: str | None) -> str:
    return value[:19].replace("T", " ") if value else "-"


def _outcome(s: dict[str, Any]) -> str:
    if s["running"]:
        return "running"
    if not s["last_status"]:
        return "-"
    return s["last_status"] + (f" x{s['failures']}" if s["failures"] > 1 else "")


@sources_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every source with its last run and outcome (secrets show as set/unset)."""
    found = sources.list_all(_engine())
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table(title="HTTP sources")
    for col in ("name", "url", "every", "enabled", "secret", "last run", "outcome", "records",
                "job", "error", "next run"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(s["name"], s["url"], f"{s['interval_seconds']} s",
                      "yes" if s["enabled"] else "no", s["secret"], _when(s["last_run_at"]),
                      _outcome(s), "-" if s["last_records"] is None else f"{s['last_records']:,}",
                      str(s["last_job_id"] or "-"), (s["last_error"] or "")[:200],
                      _when(s["next_run_at"]) if s["enabled"] else "-")
    out.print(table)


@sources_app.command("show")
def show(name: str) -> None:
    """One source as JSON (the secret shows as set/unset)."""
    try:
        out.print_json(json.dumps(sources.get(_engine(), name)))
    except sources.SourceError as exc:
        raise _fail(str(exc)) from exc


@sources_app.command("run")
def run(name: str) -> None:
    """Run a source now (also a disabled one) and print the outcome; exit 1 when it failed."""
    try:
        outcome = run_now(_engine(), get_settings().resolved_landing_dir(), name)
    except (sources.SourceError, Busy) as exc:
        raise _fail(str(exc)) from exc
    line = (f"{outcome.source}: {outcome.status}, {outcome.records:,} record(s) in "
            f"{outcome.pages} page(s)")
    if outcome.job_id is not None:
        line += f", job {outcome.job_id} ({outcome.job_kind})"
    out.print(line, highlight=False)
    if outcome.error:
        (console if outcome.status == "failed" else out).print(
            f"{'error' if outcome.status == 'failed' else 'note'}: {outcome.error}",
            markup=False, highlight=False)
    out.print(f"next run: {_when(outcome.next_run_at)}", highlight=False)
    if outcome.status == "failed":
        raise typer.Exit(1)


def _change(name: str, changes: dict[str, Any], verb: str) -> None:
    try:
        sources.update(_engine(), name, changes)
    except sources.SourceError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"source {name} {verb}", highlight=False)


@sources_app.command("enable")
def enable(name: str) -> None:
    """Switch a source on (a run that fell due while it was off happens soon)."""
    _change(name, {"enabled": True}, "enabled")


@sources_app.command("disable")
def disable(name: str) -> None:
    """Switch a source off (a run in progress finishes)."""
    _change(name, {"enabled": False}, "disabled")


@sources_app.command("remove")
def remove(name: str) -> None:
    """Delete a source (its jobs and ingested records stay)."""
    try:
        sources.delete(_engine(), name)
    except sources.SourceError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"source {name} removed", highlight=False)
