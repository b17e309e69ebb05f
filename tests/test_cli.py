"""The `recordbank` command: ingest summary and exit codes, jobs, job report, quarantine CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recordbank.cli import app
from recordbank.config import get_settings
from recordbank.store.client import Store

runner = CliRunner()


@pytest.fixture
def cli_env(store: Store, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Path:
    monkeypatch.setenv("RECORDBANK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECORDBANK_STORE_URL", store.url)
    monkeypatch.setenv("RECORDBANK_DATABASE_URL", database_url)
    get_settings.cache_clear()
    store.command("TRUNCATE TABLE IF EXISTS records")
    store.command("TRUNCATE TABLE IF EXISTS quarantine")
    yield tmp_path
    get_settings.cache_clear()


def _people(path: Path) -> Path:
    path.write_text(
        "First Name,Last Name,E-mail,Phone,Country,Notes\n"
        "Ann,Lee,ann@example.com,+1 415 555 0100,US,=HYPERLINK(\"http://x\")\n"
        "Ann,Lee,ANN@example.com ,+1 (415) 555-0100,USA,dup\n"
        ",,,,FR,=cmd|' /C calc'!A0\n", encoding="utf-8")
    return path


def test_ingest_prints_summary_and_job_report(cli_env: Path) -> None:
    result = runner.invoke(app, ["ingest", "-q", str(_people(cli_env / "p.csv")),
                                 "--source", "crm"])
    assert result.exit_code == 0, result.output
    assert "Ingest summary" in result.output and "succeeded" in result.output
    jobs = runner.invoke(app, ["jobs"])
    assert jobs.exit_code == 0 and "crm" in jobs.output
    job = runner.invoke(app, ["job", "1"])
    assert job.exit_code == 0
    assert "Mapping of p.csv" in job.output and "E-mail" in job.output and "email" in job.output
    again = runner.invoke(app, ["ingest", "-q", str(cli_env / "p.csv")])
    assert again.exit_code == 0 and "already ingested by job 1" in again.output


def test_quarantine_csv_neutralizes_formulas(cli_env: Path) -> None:
    runner.invoke(app, ["ingest", "-q", str(_people(cli_env / "p.csv"))])
    result = runner.invoke(app, ["quarantine", "1", "--csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0][:2] == ["source_row", "reasons"]
    notes = rows[0].index("Notes")
    assert rows[1][1] == "identity:missing"
    assert rows[1][notes] == "'=cmd|' /C calc'!A0"


def test_failures_exit_non_zero(cli_env: Path) -> None:
    empty = cli_env / "empty.csv"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["ingest", "-q", str(empty)])
    assert result.exit_code == 1
    assert "failed" in result.output
    missing = runner.invoke(app, ["ingest", "-q", str(cli_env / "nope*.csv")])
    assert missing.exit_code == 2
    bad_order = runner.invoke(app, ["ingest", "-q", str(empty), "--date-order", "XYZ"])
    assert bad_order.exit_code != 0
    assert runner.invoke(app, ["job", "999"]).exit_code == 1
