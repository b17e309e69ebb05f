"""`recordbank sources`: add (secret from the environment), list, show, run now, enable,
disable, remove, against a real local HTTP server; the secret never reaches the output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_http import SECRET, SECRET_HEADER, PagesServer, person, serving
from sqlalchemy import select
from typer.testing import CliRunner

from recordbank.cli import app
from recordbank.config import get_settings
from recordbank.db.models import Job
from recordbank.db.session import get_engine, session_scope

runner = CliRunner()
TOKEN = SECRET.split()[1]


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RECORDBANK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECORDBANK_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_TOKEN", SECRET)
    monkeypatch.setenv("COLUMNS", "250")  # the list table, unfolded
    get_settings.cache_clear()
    yield get_settings().resolved_database_url()
    get_settings.cache_clear()


@pytest.fixture
def server(free_port: int) -> Iterator[PagesServer]:
    with serving(free_port, [person(i) for i in range(1, 26)]) as srv:
        yield srv


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert TOKEN not in result.output, args  # stdout and stderr together
    return result


def test_add_list_run_and_remove_a_source(cli_env: str, server: PagesServer) -> None:
    made = invoke("sources", "add", "crm", server.url("/page"), "--interval", "600",
                  "--records-path", "data.items", "--pagination", "page",
                  "--header", "Accept-Language: en", "--secret-header", SECRET_HEADER,
                  "--secret-env", "CRM_TOKEN")
    assert made.exit_code == 0, made.output
    assert "crm added" in made.stdout and "secret set" in made.stdout
    listed = invoke("sources", "list", "--json")
    [shown] = json.loads(listed.stdout)
    assert (shown["name"], shown["secret"], shown["headers"], shown["pagination"]["type"]) == \
        ("crm", "set", {"Accept-Language": "en"}, "page")
    assert shown["last_status"] is None and shown["enabled"] is True
    ran = invoke("sources", "run", "crm")
    assert ran.exit_code == 0, ran.output
    assert "crm: ok, 25 record(s) in 4 page(s), job 1 (queued)" in ran.stdout
    assert all(h.get(SECRET_HEADER) == SECRET and h.get("Accept-Language") == "en"
               for _, h in server.seen)
    with session_scope(get_engine(cli_env)) as s:
        job = s.scalars(select(Job)).one()
        assert (job.origin, job.source, job.status) == ("http", "crm", "queued")
        assert Path(job.path).read_text().count("\n") == 25
    table = invoke("sources", "list")
    assert table.exit_code == 0 and "crm" in table.stdout and "ok" in table.stdout
    detail = json.loads(invoke("sources", "show", "crm").stdout)
    assert (detail["last_records"], detail["last_job_id"], detail["failures"]) == (25, 1, 0)
    assert invoke("sources", "disable", "crm").exit_code == 0
    assert json.loads(invoke("sources", "show", "crm").stdout)["enabled"] is False
    assert invoke("sources", "enable", "crm").exit_code == 0
    assert invoke("sources", "remove", "crm").exit_code == 0
    assert json.loads(invoke("sources", "list", "--json").stdout) == []


def test_a_failed_run_exits_1_with_its_error(cli_env: str, server: PagesServer) -> None:
    assert invoke("sources", "add", "broken", server.url("/fail/500"), "--secret-header",
                  SECRET_HEADER, "--secret-env", "CRM_TOKEN").exit_code == 0
    failed = invoke("sources", "run", "broken")
    assert failed.exit_code == 1 and "broken: failed" in failed.stdout
    assert "HTTP 500" in failed.output
    second = invoke("sources", "run", "broken")
    assert second.exit_code == 1
    listed = invoke("sources", "list")
    assert "failed x2" in listed.stdout
    assert invoke("sources", "add", "open", server.url("/none")).exit_code == 0
    refused = invoke("sources", "run", "open")  # no secret: the server says 401
    assert refused.exit_code == 1 and "HTTP 401" in refused.output


def test_bad_commands_fail_clearly(cli_env: str, server: PagesServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.url("/none")
    cases = [
        (["crm", url, "--secret-header", "Authorization"], "go together"),
        (["crm", url, "--secret-env", "CRM_TOKEN"], "go together"),
        (["crm", url, "--secret-header", "Authorization", "--secret-env", "NOPE_UNSET"],
         "NOPE_UNSET is not set"),
        (["crm", url, "--header", "no colon here"], "expected 'Name: value'"),
        (["crm", "ftp://example.com/x"], "not an http(s) URL"),
        (["crm", url, "--pagination", "offset"], "pagination type"),
        (["crm", url, "--pagination", "cursor"], "cursor_path"),
        (["crm", url, "--interval", "1"], "interval"),
        (["bad name", url], "source name"),
        (["crm", url, "--mapping", "/nonexistent/map.yaml"], "mapping file"),
    ]
    for args, message in cases:
        result = invoke("sources", "add", *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    assert json.loads(invoke("sources", "list", "--json").stdout) == []
    assert invoke("sources", "add", "crm", url).exit_code == 0
    dup = invoke("sources", "add", "crm", url)
    assert dup.exit_code == 1 and "exists already" in dup.output
    for command in ("run", "show", "remove", "enable", "disable"):
        missing = invoke("sources", command, "nope")
        assert missing.exit_code == 1 and "no HTTP source" in missing.output
