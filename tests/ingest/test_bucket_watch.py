"""The watched S3-compatible bucket, against a real S3 HTTP server (moto's, on a local port):
new objects become jobs once, across scans and restarts; content known under another key is
not ingested twice; changed objects are taken again; skipped names are never downloaded;
listings are paged; a worker then ingests what was queued."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from s3kit import S3, calls, jobs, people_csv
from sqlalchemy import Engine, select

from recordbank.db.session import session_scope
from recordbank.ingest import bucket_model
from recordbank.ingest.bucket_model import BucketClaim, BucketObject
from recordbank.ingest.worker import Worker
from recordbank.runtime import Runtime


def rows(engine: Engine) -> dict[str, BucketObject]:
    with session_scope(engine) as s:
        return {r.key: r for r in s.scalars(select(BucketObject))}


def landed(landing: Path) -> list[Path]:
    return sorted(p for p in landing.rglob("*") if p.is_file())


def test_new_objects_become_jobs_once_also_after_a_restart(s3: S3, engine: Engine,
                                                           tmp_path: Path) -> None:
    bucket, landing = s3.bucket(), tmp_path / "landing"
    a, b = people_csv(tmp_path, 20, 1), people_csv(tmp_path, 20, 2)
    s3.put(bucket, "in/a.csv", a)
    s3.put(bucket, "in/crm/b.csv", b)
    watcher = s3.watcher(engine, f"s3://{bucket}/in", landing)
    gets = calls(watcher, "GetObject")
    first = watcher.scan()
    assert len(first.queued) == 2 and first.known == 0 and first.failed == 0
    assert len(gets) == 2
    found = {j.file_name: j for j in jobs(engine)}
    assert {j.origin for j in found.values()} == {"bucket"}
    assert found["a.csv"].source == "a" and found["b.csv"].source == "crm"
    sha_a = hashlib.sha256(a).hexdigest()
    assert found["a.csv"].checksum == sha_a and found["a.csv"].size_bytes == len(a)
    assert Path(found["a.csv"].path) == (landing / sha_a / "a.csv")
    assert Path(found["a.csv"].path).read_bytes() == a  # the whole object, as stored
    assert not list((landing / ".incoming").iterdir())  # no temporary file left behind
    seen = rows(engine)
    assert set(seen) == {"in/a.csv", "in/crm/b.csv"}
    assert seen["in/a.csv"].checksum == sha_a and seen["in/a.csv"].job_id == found["a.csv"].id

    again = watcher.scan()
    assert again.queued == [] and again.known == 0 and len(gets) == 2  # nothing downloaded
    restarted = s3.watcher(engine, f"s3://{bucket}/in", landing)  # a new process, same DB
    gets_after = calls(restarted, "GetObject")
    assert restarted.scan().queued == [] and gets_after == []
    assert len(jobs(engine)) == 2


def test_same_content_under_other_keys_is_ingested_once(s3: S3, runtime: Runtime,
                                                        tmp_path: Path) -> None:
    bucket, landing, engine = s3.bucket(), tmp_path / "landing", runtime.engine
    body = people_csv(tmp_path, 30, 3)
    s3.put(bucket, "one.csv", body)
    s3.put(bucket, "two.csv", body)
    watcher = s3.watcher(engine, f"s3://{bucket}", landing)
    result = watcher.scan()
    assert len(result.queued) == 1 and result.known == 1  # the second: already queued
    sha = hashlib.sha256(body).hexdigest()
    assert [p.name for p in landed(landing)] == ["one.csv"]  # the second copy was removed
    assert Worker(runtime, lease_seconds=5).run_once() == result.queued[0]
    s3.put(bucket, "three.csv", body)  # after the ingest: a duplicate
    later = watcher.scan()
    assert later.queued == [] and later.known == 1
    dup = jobs(engine)[-1]
    assert dup.file_name == "three.csv" and dup.duplicate_of == result.queued[0]
    assert dup.status == "succeeded" and dup.stage == "already-ingested"
    assert not (landing / sha / "three.csv").exists()  # downloaded, then removed
    assert set(rows(engine)) == {"one.csv", "two.csv", "three.csv"}  # none downloaded again
    assert watcher.scan().known == 0


def test_a_changed_object_is_taken_again(s3: S3, engine: Engine, tmp_path: Path) -> None:
    bucket, landing = s3.bucket(), tmp_path / "landing"
    s3.put(bucket, "feed/people.csv", people_csv(tmp_path, 10, 4))
    watcher = s3.watcher(engine, f"s3://{bucket}/feed/", landing)
    [first] = watcher.scan().queued
    etag = rows(engine)["feed/people.csv"].etag
    newer = people_csv(tmp_path, 12, 5)
    s3.put(bucket, "feed/people.csv", newer)  # same key, new content: a new ETag
    [second] = watcher.scan().queued
    assert second != first
    row = rows(engine)["feed/people.csv"]
    assert row.etag != etag and row.job_id == second
    assert row.checksum == hashlib.sha256(newer).hexdigest() and row.size == len(newer)
    assert watcher.scan().queued == []


def test_partial_hidden_folder_and_empty_objects_are_never_downloaded(
        s3: S3, engine: Engine, tmp_path: Path) -> None:
    bucket, landing = s3.bucket(), tmp_path / "landing"
    body = people_csv(tmp_path, 5, 6)
    for key in ("in/.hidden.csv", "in/big.csv.part", "in/x.csv.crdownload", "in/~lock.csv",
                "in/.tmp/inside.csv", "in/sub/.cache/deep.csv", "inbox/not-under-in.csv",
                "other.csv", "in/ok.csv"):
        s3.put(bucket, key, body if key != "in/ok.csv" else people_csv(tmp_path, 5, 7))
    s3.put(bucket, "in/folder/", b"")  # a "folder" marker, as consoles make them
    s3.put(bucket, "in/empty.csv", b"")
    watcher = s3.watcher(engine, f"s3://{bucket}/in", landing)
    gets = calls(watcher, "GetObject")
    assert len(watcher.scan().queued) == 1
    assert len(gets) == 1
    assert [j.file_name for j in jobs(engine)] == ["ok.csv"]
    assert set(rows(engine)) == {"in/ok.csv"}
    assert [p.name for p in landed(landing)] == ["ok.csv"]


def test_listings_are_read_page_by_page(s3: S3, engine: Engine, tmp_path: Path) -> None:
    bucket = s3.bucket()
    for i in range(7):
        s3.put(bucket, f"batch/{i:02d}.csv", people_csv(tmp_path, 3, 100 + i))
    watcher = s3.watcher(engine, f"s3://{bucket}/batch", tmp_path / "landing", page_size=2)
    lists = calls(watcher, "ListObjectsV2")
    assert len(watcher.scan().queued) == 7
    assert len(lists) == 4  # 2 + 2 + 2 + 1
    assert sorted(j.file_name for j in jobs(engine)) == [f"{i:02d}.csv" for i in range(7)]
    with pytest.raises(ValueError):
        s3.watcher(engine, f"s3://{bucket}", tmp_path, page_size=0)
    with pytest.raises(ValueError):
        s3.watcher(engine, f"s3://{bucket}", tmp_path, page_size=1001)


def test_a_failed_download_is_tried_again_at_the_next_scan(s3: S3, engine: Engine,
                                                           tmp_path: Path) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "a.csv", people_csv(tmp_path, 5, 8))
    landing = tmp_path / "landing"
    landing.write_text("a file where the landing folder should be")
    watcher = s3.watcher(engine, f"s3://{bucket}", landing)
    broken = watcher.scan()
    assert broken.queued == [] and broken.failed == 1
    assert rows(engine) == {} and jobs(engine) == []  # not remembered
    landing.unlink()
    fixed = watcher.scan()
    assert len(fixed.queued) == 1 and fixed.failed == 0
    assert set(rows(engine)) == {"a.csv"}


def test_objects_from_the_bucket_are_ingested_into_the_store(s3: S3, runtime: Runtime,
                                                             tmp_path: Path) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "drop/crm/people.csv", people_csv(tmp_path, 150, 9))
    s3.put(bucket, "drop/web/more.csv", people_csv(tmp_path, 40, 10))
    watcher = s3.watcher(runtime.engine, f"s3://{bucket}/drop",
                         runtime.settings.resolved_landing_dir())
    queued = watcher.scan().queued
    assert len(queued) == 2
    worker = Worker(runtime, lease_seconds=5)
    assert [worker.run_once(), worker.run_once(), worker.run_once()] == [*queued, None]
    done = {j.file_name: j for j in jobs(runtime.engine)}
    assert done["people.csv"].status == "succeeded" and done["people.csv"].rows_read == 150
    assert done["more.csv"].status == "succeeded" and done["more.csv"].rows_read == 40
    assert done["people.csv"].source == "crm"
    stored = runtime.store.scalar(
        f"SELECT count() FROM records WHERE job_id IN ({queued[0]}, {queued[1]})")
    assert int(stored) == done["people.csv"].rows_inserted + done["more.csv"].rows_inserted
    assert int(stored) > 0


def test_two_watchers_of_one_bucket_download_each_object_once(s3: S3, engine: Engine,
                                                              tmp_path: Path) -> None:
    """Two `serve` processes (or serve and `watch-bucket`) scanning at the same time."""
    import threading

    bucket, landing = s3.bucket(), tmp_path / "landing"
    for i in range(12):
        s3.put(bucket, f"in/f{i}.csv", people_csv(tmp_path, 5, 100 + i))
    watchers = [s3.watcher(engine, f"s3://{bucket}/in", landing, page_size=3)
                for _ in range(3)]
    gets = [calls(w, "GetObject") for w in watchers]
    start = threading.Barrier(len(watchers))
    results = []

    def scan(w: object) -> None:
        start.wait()
        results.append(w.scan())  # type: ignore[attr-defined]

    threads = [threading.Thread(target=scan, args=(w,)) for w in watchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(g) for g in gets) == 12  # each object downloaded by one watcher only
    assert sum(len(r.queued) for r in results) == 12 and len(jobs(engine)) == 12
    assert all(r.failed == 0 and r.known == 0 for r in results)
    assert len(rows(engine)) == 12
    with session_scope(engine) as s:  # every claim ended with its download
        assert s.scalars(select(BucketClaim)).all() == []
    later = s3.watcher(engine, f"s3://{bucket}/in", landing)
    assert later.scan().queued == [] and calls(later, "GetObject") == []


def test_a_claim_left_by_a_dead_watcher_is_taken_once_it_runs_out(s3: S3, engine: Engine,
                                                                  tmp_path: Path) -> None:
    bucket, landing = s3.bucket(), tmp_path / "landing"
    s3.put(bucket, "in/a.csv", people_csv(tmp_path, 5, 1))
    etag = s3.client().head_object(Bucket=bucket, Key="in/a.csv")["ETag"]
    claimed = {"bucket": bucket, "key": "in/a.csv", "etag": etag, "owner": "dead-watcher"}
    assert bucket_model.claim(engine, **claimed, seconds=3600)
    assert not bucket_model.claim(engine, **{**claimed, "owner": "other"}, seconds=60)
    watcher = s3.watcher(engine, f"s3://{bucket}/in", landing)
    gets = calls(watcher, "GetObject")
    blocked = watcher.scan()
    assert (blocked.queued, blocked.waiting, gets) == ([], 1, [])  # the claim holds
    with session_scope(engine) as s:  # the dead watcher's time runs out
        row = s.scalars(select(BucketClaim)).one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    taken = watcher.scan()
    assert len(taken.queued) == 1 and taken.waiting == 0 and len(gets) == 1
    with session_scope(engine) as s:
        assert s.scalars(select(BucketClaim)).all() == []
