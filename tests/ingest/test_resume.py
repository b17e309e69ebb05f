"""Killing an ingest with SIGKILL at any moment, then running it again, stores exactly the rows
of one clean run. The ingest runs in a subprocess with its own store (chDB allows one store per
process); the test watches the job's stage in the relational DB to pick kill points."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from store_digest import cli as _cli
from store_digest import digest
from store_digest import run_env as _env

from recordbank.sample import HEADER, generate_people, write_csv

pytestmark = pytest.mark.slow

def _stage(database_url: str) -> str | None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(database_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            row = conn.execute(sqlalchemy.text(
                "SELECT stage FROM ingest_jobs ORDER BY id DESC LIMIT 1")).first()
            return row[0] if row else None
    except Exception:  # noqa: BLE001 - the table may not exist yet
        return None
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "people.csv"
    write_csv(path, generate_people(400_000, seed=7), HEADER)
    return path


@pytest.mark.parametrize("kill_at", ["registered", "transform", "publish", "publish+0.15",
                                     "publish+0.35", "t+0.3", "t+1.5", "t+3"])
def test_sigkill_then_rerun_equals_one_clean_run(big_csv: Path, tmp_path: Path,
                                                 database_url: str, kill_at: str) -> None:
    clean_env = _env(tmp_path / "clean", f"sqlite:///{tmp_path / 'clean.db'}")
    subprocess.run(_cli("ingest", "-q", str(big_csv)), env=clean_env, check=True, timeout=300,
                   capture_output=True)
    expected = digest(clean_env)

    env = _env(tmp_path / "killed", database_url)
    proc = subprocess.Popen(_cli("ingest", "-q", str(big_csv)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() < deadline:
        if kill_at.startswith("t+"):
            if time.monotonic() - started >= float(kill_at[2:]):
                break
        elif _stage(database_url) == kill_at.split("+")[0]:
            if "+" in kill_at:  # some time into the stage: mid-insert into records
                time.sleep(float(kill_at.split("+")[1]))
            break
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    rerun = subprocess.run(_cli("ingest", "-q", str(big_csv)), env=env, timeout=300,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    got = digest(env)
    assert got == expected
    assert got["records"] == got["unique"]
    assert got["leftover_tables"] == 0
