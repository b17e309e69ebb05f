"""`recordbank serve`: the API (and, embedded, the one process that owns the store)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine

from recordbank.accounts.users import AccountError, create_user, find_user, issue_key
from recordbank.billing import ledger
from recordbank.cli.ingest import _runtime, app, console, out

DEMO_EMAIL = "demo@recordbank.local"
DEMO_CREDITS = 10_000


def demo_key(rt_engine: Engine) -> str:
    """A fresh key for the demo user, topped up to DEMO_CREDITS."""
    try:
        user = find_user(rt_engine, DEMO_EMAIL)
    except AccountError:
        user = create_user(rt_engine, DEMO_EMAIL, name="Demo customer")
    balance = ledger.balance(rt_engine, user.id)
    if balance < DEMO_CREDITS:
        ledger.grant(rt_engine, user.id, DEMO_CREDITS - balance, reason="demo top-up")
    return issue_key(rt_engine, user.id, name="demo").plaintext


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    demo: Annotated[bool, typer.Option(
        "--demo", help="Print a demo key with credits and a request to paste")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the REST API (docs at /docs). In the embedded default this process owns the store."""
    import uvicorn

    from recordbank.api.app import create_app

    rt = _runtime()
    application = create_app(runtime=rt)
    if demo:
        key = demo_key(rt.engine)
        base = f"http://{host}:{port}"
        out.print(f"\nDemo API key ({DEMO_CREDITS:,} credits): [bold]{key}[/bold]\n")
        out.print("Try:", style="bold")
        out.print(f"  curl -s -H 'X-API-Key: {key}' '{base}/v1/records?country=US"
                  f"&_fields=name,email,phone&_sort=-created_date&_limit=5'", soft_wrap=True)
        out.print(f"  curl -s -H 'X-API-Key: {key}' {base}/v1/credits", soft_wrap=True)
        out.print(f"  open {base}/docs\n")
    console.print(f"serving on http://{host}:{port} (Ctrl-C to stop)")
    # No access log: the usage log records every request, without anything secret in it.
    # Open event streams (GET /v1/ingest/jobs/{id}/events) must not hold a shutdown forever.
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)
