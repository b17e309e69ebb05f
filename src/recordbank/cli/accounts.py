"""Bootstrapping accounts from the shell: users, keys and credits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy import Engine

from recordbank.accounts.users import AccountError, create_user, find_user, issue_key, revoke_key
from recordbank.billing import ledger
from recordbank.cli.ingest import app, console, out
from recordbank.db.session import get_engine

users_app = typer.Typer(help="Create and list users.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue and revoke API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="Grant credits and show balances.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(credits_app, name="credits")


def _engine() -> Engine:
    """Only the relational DB: account commands work while `serve` owns the store."""
    from recordbank.config import get_settings

    return get_engine(get_settings().resolved_database_url())


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@users_app.command("create")
def users_create(
    email: str,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin")] = False,
    rate_limit: Annotated[str | None, typer.Option(
        help='This user\'s own limits, e.g. "20/second;1200/minute"')] = None,
) -> None:
    """Create a user (prints its id)."""
    try:
        user = create_user(_engine(), email, name=name, role="admin" if admin else "user",
                           rate_limit=rate_limit)
    except AccountError as exc:
        raise _fail(exc) from exc
    out.print(f"user {user.id} {user.email} ({user.role})")


@users_app.command("show")
def users_show(user: str) -> None:
    """A user by id or email, with its balance."""
    engine = _engine()
    try:
        found = find_user(engine, user)
    except AccountError as exc:
        raise _fail(exc) from exc
    out.print(json.dumps({"id": found.id, "email": found.email, "name": found.name,
                          "role": found.role, "status": found.status,
                          "balance": ledger.balance(engine, found.id)}, indent=2))


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Argument(help="User id or email")],
    name: Annotated[str, typer.Option(help="A label for the key")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Add the admin scope")] = False,
    scope: Annotated[list[str] | None, typer.Option(
        help="Scopes (query, export, ingest, admin); default query + export")] = None,
    expires: Annotated[datetime | None, typer.Option(help="Expiry date/time (UTC)")] = None,
) -> None:
    """Issue a key. The plaintext is printed once and never stored."""
    engine = _engine()
    scopes = list(scope or ["query", "export"])
    if admin and "admin" not in scopes:
        scopes.append("admin")
    try:
        owner = find_user(engine, user)
        issued = issue_key(engine, owner.id, name=name, scopes=scopes,
                           expires_at=expires.replace(tzinfo=UTC) if expires else None)
    except AccountError as exc:
        raise _fail(exc) from exc
    console.print(f"key {issued.id} ({issued.prefix}…) for user {owner.email}, scopes "
                  f"{', '.join(issued.scopes)}. Shown once — store it now:")
    out.print(issued.plaintext)


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key (refused by every API process within a second)."""
    try:
        revoke_key(_engine(), key_id)
    except AccountError as exc:
        raise _fail(exc) from exc
    out.print(f"key {key_id} revoked")


@credits_app.command("add")
def credits_add(
    user: Annotated[str, typer.Argument(help="User id or email")],
    amount: Annotated[int, typer.Argument(help="Credits to grant (whole, > 0)")],
    expires: Annotated[datetime | None, typer.Option(
        help="The grant stops counting at this date/time (UTC)")] = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger)")] = "granted from CLI",
) -> None:
    """Grant credits."""
    if amount <= 0:
        raise _fail(ValueError("amount must be a positive whole number of credits"))
    engine = _engine()
    try:
        owner = find_user(engine, user)
    except AccountError as exc:
        raise _fail(exc) from exc
    when = expires.replace(tzinfo=UTC) if expires is not None else None
    try:
        ledger.grant(engine, owner.id, amount, reason=reason, expires_at=when)
    except ValueError as exc:
        raise _fail(exc) from exc
    out.print(f"granted {amount:,} credits to {owner.email}; balance "
              f"{ledger.balance(engine, owner.id):,}")


@credits_app.command("show")
def credits_show(user: Annotated[str, typer.Argument(help="User id or email")]) -> None:
    """Balance, open holds and grants."""
    engine = _engine()
    try:
        owner = find_user(engine, user)
    except AccountError as exc:
        raise _fail(exc) from exc
    s = ledger.summary(engine, owner.id)
    out.print(json.dumps({"balance": s.balance, "held": s.held, "open_holds": s.open_holds,
                          "grants": s.grants}, indent=2, default=str))

