"""Landed copies are deleted once their content is ingested (real workers, real ingests): kept
after a failure or a cancel (a retry reads them) and when the settings say so; the watched
folder's and the CLI's files are the user's and never deleted; nothing outside a landed
file's own folder is ever touched; what a finished job shows does not need the file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest import job_view, landed_files, queue, rejects
from recordbank.ingest.landing import place, remove_landed
from recordbank.ingest.pipeline import IngestOptions, Ingestor
from recordbank.ingest.sources import file_checksum
from recordbank.ingest.worker import Worker
from recordbank.runtime import Runtime
from recordbank.sample import HEADER, expected_counts, generate_people, write_csv

ROWS = 400


def people(folder: Path, seed: int, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / (name or f"people_{seed}.csv"), generate_people(ROWS, seed=seed),
                     HEADER)


def landing(rt: Runtime) -> Path:
    return rt.settings.resolved_landing_dir()


def land(rt: Runtime, src: Path, name: str | None = None) -> tuple[Path, str]:
    """A copy of `src` where an upload puts it: <landing>/<sha256>/<name>."""
    checksum, _ = file_checksum(src)
    temp = landing(rt) / ".incoming" / "t" / (name or src.name)
    temp.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, temp)
    final = landing(rt) / checksum / (name or src.name)
    if not place(temp, final):
        temp.unlink()
    return final, checksum


def enqueue(rt: Runtime, path: Path, origin: str = "upload") -> int:
    checksum, size = file_checksum(path)
    made = queue.enqueue(rt.engine, path=str(path), file_name=path.name, source="t",
                         checksum=checksum, size=size, options={}, origin=origin)
    assert made.kind == "queued", made
    return made.job_id


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def job(rt: Runtime, job_id: int) -> Job:
    with session_scope(rt.engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def keeping(rt: Runtime) -> Runtime:
    settings = rt.settings.model_copy(update={"keep_landed_files": True})
    return Runtime(settings=settings, store=rt.store, engine=rt.engine)


def test_an_ingested_upload_leaves_no_file_and_its_job_shows_everything(
        runtime: Runtime, tmp_path: Path) -> None:
    rt = runtime
    path, checksum = land(rt, people(tmp_path, seed=1))
    jid = enqueue(rt, path)
    assert Worker(rt, lease_seconds=10).run_once() == jid
    done = job(rt, jid)
    assert done.status == "succeeded" and done.rows_read == ROWS
    assert not path.exists() and not path.parent.exists()  # the file and its folder
    assert files(landing(rt)) == []
    shown = job_view.get(rt.engine, jid)
    assert shown is not None and shown["checksum"] == checksum
    assert (shown["file_name"], shown["counts"]["read"]) == (path.name, ROWS)
    assert shown["mapping_report"] and shown["timings"]
    quarantined = expected_counts(ROWS, seed=1).quarantined
    assert done.rows_quarantined == quarantined > 0
    csv_text = b"".join(rejects.stream(rt.store, jid)).decode()
    assert len(csv_text.splitlines()) == 1 + quarantined  # the rejects live in the store


def test_the_setting_keeps_landed_files(runtime: Runtime, tmp_path: Path) -> None:
    rt = keeping(runtime)
    path, _ = land(rt, people(tmp_path, seed=2))
    jid = enqueue(rt, path)
    assert Worker(rt, lease_seconds=10).run_once() == jid
    assert job(rt, jid).status == "succeeded" and files(landing(rt)) == [path]
    assert landed_files.drop_ingested(rt.engine, rt.settings, jid) == 0
    assert landed_files.drop_ingested(runtime.engine, runtime.settings, jid) == 1  # default
    assert files(landing(rt)) == []


def test_failed_and_cancelled_jobs_keep_their_file_for_a_retry(runtime: Runtime,
                                                              tmp_path: Path) -> None:
    rt = runtime
    bad = tmp_path / "photo.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    bad_path, _ = land(rt, bad)
    failed = enqueue(rt, bad_path)
    worker = Worker(rt, lease_seconds=10)
    assert worker.run_once() == failed and job(rt, failed).status == "failed"
    assert bad_path.exists()

    good_path, _ = land(rt, people(tmp_path, seed=3))
    cancelled = enqueue(rt, good_path)
    claimed = queue.claim_next(rt.engine, worker.name, lease_seconds=10)
    assert claimed is not None and claimed.id == cancelled
    assert queue.request_cancel(rt.engine, cancelled) == "running"
    assert worker.run_claimed(claimed) == "cancelled"
    assert good_path.exists()
    assert landed_files.drop_ingested(rt.engine, rt.settings, cancelled) == 0  # not ingested

    assert queue.retry(rt.engine, cancelled) == "queued"  # the retry reads the kept file
    assert worker.run_once() == cancelled and job(rt, cancelled).status == "succeeded"
    assert not good_path.exists() and files(landing(rt)) == [bad_path]


def test_the_users_files_are_never_deleted(runtime: Runtime, tmp_path: Path) -> None:
    rt = runtime
    watched = people(tmp_path / "watch" / "crm", seed=4)
    in_folder = enqueue(rt, watched, origin="folder")
    # a watched folder set to the landing folder itself: still the user's file
    misplaced, _ = land(rt, people(tmp_path / "src", seed=5))
    in_landing = enqueue(rt, misplaced, origin="folder")
    worker = Worker(rt, lease_seconds=10)
    assert worker.run_once() == in_folder and worker.run_once() == in_landing
    assert job(rt, in_folder).status == job(rt, in_landing).status == "succeeded"
    assert watched.exists() and misplaced.exists()

    by_cli = people(tmp_path / "cli", seed=6)
    result = Ingestor(rt).ingest(by_cli, IngestOptions())
    assert result.status == "succeeded" and job(rt, result.job_id).origin is None
    assert landed_files.drop_ingested(rt.engine, rt.settings, result.job_id) == 0
    assert by_cli.exists()


def test_a_failed_copy_of_content_ingested_since_goes_and_its_retry_says_why(
        runtime: Runtime, tmp_path: Path) -> None:
    rt = runtime
    src = people(tmp_path, seed=7)
    first, checksum = land(rt, src, "first.csv")
    old = enqueue(rt, first)
    assert queue.claim_next(rt.engine, "w", lease_seconds=10) is not None
    assert queue.release(rt.engine, old, "w", outcome="failed", error="the disk hiccuped",
                         error_code="file:io") == "failed"
    second, _ = land(rt, src, "second.csv")  # the same bytes under another name
    newer = enqueue(rt, second)
    assert files(landing(rt)) == sorted([first, second])
    assert Worker(rt, lease_seconds=10).run_once() == newer
    assert files(landing(rt)) == [] and not (landing(rt) / checksum).exists()
    with pytest.raises(queue.RetryRefused) as refused:
        queue.retry(rt.engine, old)
    assert refused.value.reason == "already-ingested" and refused.value.job_id == newer


def test_removing_touches_nothing_outside_the_landed_files_folder(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    checksum = "ab" * 32
    folder = root / checksum
    folder.mkdir(parents=True)
    outside = tmp_path / "precious.csv"
    outside.write_text("keep me")
    for name in ("a.csv", "a.csv.utf8", "b.csv"):
        (folder / name).write_text("x")
    os.symlink(outside, folder / "link.csv")
    other = root / ("cd" * 32)
    other.mkdir()
    (other / "c.csv").write_text("x")

    assert remove_landed(outside, root, checksum) == 0  # not in the folder
    assert remove_landed(other / "c.csv", root, checksum) == 0  # another content's folder
    assert remove_landed(folder / "a.csv", root, "../" + checksum) == 0
    assert remove_landed(folder / "a.csv", root, "AB" * 32) == 0  # not a SHA-256 folder
    assert remove_landed(folder / "link.csv", root, checksum) == 0  # points outside
    (root / ".incoming").mkdir()
    assert remove_landed(root / ".incoming" / "x", root, ".incoming") == 0
    assert len(files(root)) == 5

    assert remove_landed(folder / "a.csv", root, checksum) == 4  # 3 files and the link
    assert not folder.exists() and outside.read_text() == "keep me"
    assert files(root) == [other / "c.csv"]
    assert remove_landed(folder / "a.csv", root, checksum) == 0  # gone already: no error

    (other / "sub").mkdir()  # something that is not a landed file: the folder stays
    assert remove_landed(other / "c.csv", root, "cd" * 32) == 1
    assert other.exists() and files(root) == []


def test_place_never_overwrites_and_makes_its_folder(tmp_path: Path) -> None:
    temp = tmp_path / "t" / "a.csv"
    temp.parent.mkdir()
    temp.write_text("new")
    final = tmp_path / "landing" / ("ab" * 32) / "a.csv"
    assert place(temp, final) and final.read_text() == "new" and not temp.exists()
    temp.write_text("again")
    assert not place(temp, final)  # there already: a job may read it, left as it is
    assert final.read_text() == "new" and temp.exists()


@pytest.mark.parametrize("later", ["folder", "cli"])
def test_a_failed_uploads_copy_goes_when_a_users_file_ingests_its_content(
        runtime: Runtime, tmp_path: Path, later: str) -> None:
    """Nothing re-uploads it: the content came in from the watched folder (or the CLI)."""
    from recordbank.cli.ingest import run_ingest

    rt = runtime
    src = people(tmp_path / "src", seed=8)
    copy, checksum = land(rt, src)
    failed = enqueue(rt, copy)
    assert queue.claim_next(rt.engine, "w", lease_seconds=10) is not None
    assert queue.release(rt.engine, failed, "w", outcome="failed", error="cut off",
                         error_code="file:io") == "failed"
    assert files(landing(rt)) == [copy]
    users = people(tmp_path / "watch" / "crm", seed=8)  # the same bytes, the user's file
    if later == "folder":
        done = enqueue(rt, users, origin="folder")
        assert Worker(rt, lease_seconds=10).run_once() == done
    else:
        (result,) = run_ingest(rt, [users], IngestOptions(), quiet=True)
        done = result.job_id
    assert job(rt, done).status == "succeeded"
    assert files(landing(rt)) == [] and not (landing(rt) / checksum).exists()
    assert users.exists() and users.read_bytes() == src.read_bytes()
