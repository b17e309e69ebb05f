"""The watched landing folder: settled new files become queued jobs once, whatever their name;
files being written, hidden or partial ones wait; a queued file is then ingested by a worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, select

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest.watch import FolderWatcher
from recordbank.ingest.worker import Worker
from recordbank.runtime import Runtime
from recordbank.sample import HEADER, generate_people, write_csv

PAST = time.time() - 60


def settled(path: Path) -> Path:
    os.utime(path, (PAST, PAST))
    return path


def jobs(engine: Engine) -> list[Job]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def test_new_settled_files_are_queued_once(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    (folder / "crm").mkdir(parents=True)
    a = settled(write_csv(folder / "a.csv", generate_people(20, seed=1), HEADER))
    b = settled(write_csv(folder / "crm" / "b.csv", generate_people(20, seed=2), HEADER))
    watcher = FolderWatcher(engine, folder, settle_seconds=1)
    first = watcher.scan()
    assert len(first.queued) == 2 and first.waiting == 0
    found = {j.file_name: j for j in jobs(engine)}
    assert found["a.csv"].source == "a" and found["b.csv"].source == "crm"
    assert {j.origin for j in found.values()} == {"folder"}
    assert found["a.csv"].path == str(a.resolve()) and found["b.csv"].status == "queued"
    assert watcher.scan().queued == []  # nothing new
    copy = settled(Path(shutil.copy(b, folder / "b-again.csv")))
    again = FolderWatcher(engine, folder, settle_seconds=1).scan()  # a fresh watcher too
    assert again.queued == [] and again.known == 3  # same contents: the queue knows them
    assert copy.exists() and len(jobs(engine)) == 2


def test_files_still_changing_hidden_or_partial_wait(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    fresh = write_csv(folder / "fresh.csv", generate_people(5, seed=3), HEADER)  # mtime: now
    settled(write_csv(folder / ".hidden.csv", generate_people(5, seed=4), HEADER))
    settled(write_csv(folder / "big.csv.part", generate_people(5, seed=5), HEADER))
    (folder / "empty.csv").touch()
    settled(folder / "empty.csv")
    (folder / ".tmp").mkdir()
    settled(write_csv(folder / ".tmp" / "inside.csv", generate_people(5, seed=6), HEADER))
    watcher = FolderWatcher(engine, folder, settle_seconds=30)
    first = watcher.scan()
    assert first.queued == [] and first.waiting == 2  # fresh.csv and the empty file
    settled(fresh)
    assert len(watcher.scan().queued) == 1
    assert [j.file_name for j in jobs(engine)] == ["fresh.csv"]
    assert FolderWatcher(engine, tmp_path / "missing", settle_seconds=0).scan().queued == []


def test_a_watched_file_is_ingested_by_a_worker(runtime: Runtime, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    settled(write_csv(folder / "people.csv", generate_people(150, seed=9), HEADER))
    [job_id] = FolderWatcher(runtime.engine, folder, settle_seconds=1).scan().queued
    assert Worker(runtime, lease_seconds=5).run_once() == job_id
    done = [j for j in jobs(runtime.engine) if j.id == job_id][0]
    assert done.status == "succeeded" and done.rows_read == 150


def test_the_watch_command_queues_and_reports(tmp_path: Path, database_url: str) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    settled(write_csv(folder / "one.csv", generate_people(5, seed=11), HEADER))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env.update(RECORDBANK_DATA_DIR=str(tmp_path / "data"), RECORDBANK_DATABASE_URL=database_url)
    out = subprocess.run([sys.executable, "-m", "recordbank.cli", "watch", str(folder),
                          "--once", "--settle", "1"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "1 new file(s) queued" in out.stdout
