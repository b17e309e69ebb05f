"""`recordbank users|keys|credits`: bootstrap accounts from the shell; the key is shown once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from recordbank.accounts.keys import hash_key, looks_like_key
from recordbank.accounts.models import ApiKey
from recordbank.billing import ledger
from recordbank.cli import app
from recordbank.config import get_settings
from recordbank.db.session import get_engine, session_scope

runner = CliRunner()


@pytest.fixture
def accounts_env(database_url: str, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RECORDBANK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECORDBANK_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield get_settings().resolved_database_url()
    get_settings.cache_clear()


def test_bootstrap_a_customer(accounts_env: str) -> None:
    made = runner.invoke(app, ["users", "create", "Alice@Example.com", "--name", "Alice"])
    assert made.exit_code == 0, made.output
    assert "alice@example.com" in made.stdout
    key_run = runner.invoke(app, ["keys", "create", "alice@example.com", "--name", "laptop"])
    assert key_run.exit_code == 0, key_run.output
    key = key_run.stdout.strip().splitlines()[-1]
    assert looks_like_key(key)
    engine = get_engine(accounts_env)
    with session_scope(engine) as s:
        stored = s.scalars(select(ApiKey)).one()
        assert stored.key_hash == hash_key(key) and stored.scopes == ["query", "export"]
    granted = runner.invoke(app, ["credits", "add", "alice@example.com", "500",
                                  "--expires", "2099-01-01", "--reason", "annual plan"])
    assert granted.exit_code == 0, granted.output
    assert "balance 500" in granted.stdout
    assert ledger.balance(engine, 1) == 500
    shown = runner.invoke(app, ["credits", "show", "1"])
    assert '"balance": 500' in shown.stdout and "annual plan" in shown.stdout
    admin = runner.invoke(app, ["keys", "create", "1", "--admin"])
    assert admin.exit_code == 0 and "admin" in admin.output


def test_bad_account_commands_fail_clearly(accounts_env: str) -> None:
    assert runner.invoke(app, ["users", "create", "not-an-email"]).exit_code == 1
    assert runner.invoke(app, ["users", "create", "a@b.co"]).exit_code == 0
    dup = runner.invoke(app, ["users", "create", "A@b.co"])
    assert dup.exit_code == 1 and "already exists" in dup.output
    assert runner.invoke(app, ["keys", "create", "nobody@b.co"]).exit_code == 1
    assert runner.invoke(app, ["keys", "create", "a@b.co", "--scope", "root"]).exit_code == 1
    assert runner.invoke(app, ["credits", "add", "a@b.co", "0"]).exit_code == 1
    assert runner.invoke(app, ["credits", "add", "a@b.co", "-5"]).exit_code != 0
    past = runner.invoke(app, ["credits", "add", "a@b.co", "5", "--expires", "2001-01-01"])
    assert past.exit_code == 1 and "Traceback" not in past.output
    assert runner.invoke(app, ["keys", "revoke", "999"]).exit_code == 1
    assert ledger.balance(get_engine(accounts_env), 1) == 0
