"""The watched bucket when things go wrong: malformed URLs refused when the settings are read,
wrong credentials, a missing bucket, an unreachable endpoint and refused downloads answered in
one clear line (never the secret), the loop in `recordbank serve` going on through them, and
`recordbank watch-bucket` reporting them as errors, not tracebacks."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from s3kit import S3, calls, jobs, people_csv
from sqlalchemy import Engine

from recordbank.api.app import create_app
from recordbank.config import Settings
from recordbank.ingest.bucket_location import BucketLocation, parse_bucket_url
from recordbank.ingest.bucket_watch import BucketAccess, BucketError, BucketWatcher
from recordbank.ingest.watch import WatchLoop
from recordbank.runtime import Runtime


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Wait for a background loop to get somewhere (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the loop never got there"
        time.sleep(0.1)


@pytest.mark.parametrize("url, expected", [
    ("s3://bucket", BucketLocation("bucket", "")),
    ("s3://bucket/", BucketLocation("bucket", "")),
    ("s3://my.bucket-1/in", BucketLocation("my.bucket-1", "in/")),
    ("s3://b_legacy/a/b/", BucketLocation("b_legacy", "a/b/")),
    ("  S3://bucket//deep  ", BucketLocation("bucket", "deep/")),
])
def test_bucket_urls_are_read_as_bucket_and_folder(url: str, expected: BucketLocation) -> None:
    assert parse_bucket_url(url) == expected
    assert Settings(bucket_url=url).bucket_url == url.strip()


@pytest.mark.parametrize("url", [
    "bucket/prefix", "http://bucket/x", "s3:/bucket", "s3://", "s3:///prefix", "s3://ab",
    "s3://-bucket", "s3://bu cket/x", "s3://bucket:9000/x", "s3://a..b", "s3://bucket/x?y=1",
    "s3://bucket/x#frag", "s3://bucket/x\ny", "s3://" + "b" * 300, "s3://bucket/" + "p" * 1000,
])
def test_malformed_bucket_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_bucket_url(url)
    with pytest.raises(ValidationError):
        Settings(bucket_url=url)


def test_credentials_are_never_shown_back() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(bucket_url="s3://AKIDX:hunter2secret@bucket/in")
    assert "hunter2secret" not in str(info.value) and "credentials" in str(info.value)
    with pytest.raises(ValidationError) as info:
        Settings(bucket_endpoint_url="https://user:hunter2secret@minio.local")
    assert "hunter2secret" not in str(info.value)
    for bad in ("minio.local:9000", "ftp://minio.local", "http://", "http://host:99999"):
        with pytest.raises(ValidationError):
            Settings(bucket_endpoint_url=bad)
    settings = Settings(bucket_secret_access_key="hunter2secret")
    assert "hunter2secret" not in repr(settings) and "hunter2secret" not in str(settings)
    assert "hunter2secret" not in repr(BucketAccess.from_settings(settings))


def test_wrong_credentials_and_refused_downloads(s3: S3, engine: Engine,
                                                 tmp_path: Path) -> None:
    bucket, landing = s3.bucket(), tmp_path / "landing"
    s3.put(bucket, "a.csv", people_csv(tmp_path, 5, 1))
    admin = s3.user(["s3:*", "iam:*"])
    lister = s3.user(["s3:ListBucket"])
    s3.enforce_auth()
    url = f"s3://{bucket}"
    for key_id, secret in (("AKIAUNKNOWN000000000", "no-such-secret"),
                           (admin[0], "wrong-secret-for-this-key")):
        with pytest.raises(BucketError) as info:
            s3.watcher(engine, url, landing, access=s3.access(key_id, secret)).scan()
        assert "access refused" in str(info.value)
        assert secret not in str(info.value)
    listing_only = s3.watcher(engine, url, landing, access=s3.access(*lister[:2]))
    refused = listing_only.scan()  # the listing works, the download is refused
    assert refused.queued == [] and refused.failed == 1 and jobs(engine) == []
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "*"}]}
    s3.client(*admin[:2], service="iam").put_user_policy(
        UserName=lister[2], PolicyName="p", PolicyDocument=json.dumps(policy))
    assert len(listing_only.scan().queued) == 1  # not remembered: tried again


def test_a_missing_bucket_or_an_unreachable_endpoint_is_one_clear_error(
        s3: S3, engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(BucketError, match="bucket 'no-such-bucket' does not exist"):
        s3.watcher(engine, "s3://no-such-bucket/in", tmp_path).scan()
    nowhere = BucketAccess(endpoint_url=f"http://127.0.0.1:{closed_port()}",
                           access_key_id="k", secret_access_key="s3cr3t-value")
    with pytest.raises(BucketError, match="cannot reach http://127.0.0.1") as info:
        BucketWatcher(engine, "s3://bucket", tmp_path, nowhere).scan()
    assert "s3cr3t-value" not in str(info.value)
    assert jobs(engine) == []


def test_the_loop_goes_on_through_errors_and_logs_each_once(
        s3: S3, engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="recordbank.ingest.watch")
    stop = threading.Event()
    watcher = s3.watcher(engine, "s3://late-bucket/in", tmp_path / "landing", stop=stop)
    lists = calls(watcher, "ListObjectsV2")
    loop = WatchLoop(watcher, 0.1, name="watch-bucket", stop=stop).start()
    try:
        until(lambda: len(lists) >= 4)  # several failed scans
        assert caplog.text.count("does not exist") == 1  # one line, not one per scan
        assert "Traceback" not in caplog.text
        s3.client().create_bucket(Bucket="late-bucket")
        s3.put("late-bucket", "in/people.csv", people_csv(tmp_path, 5, 2))
        until(lambda: len(jobs(engine)) == 1)
        until(lambda: "scanning works again" in caplog.text)
    finally:
        loop.close()
    assert not loop._thread.is_alive()


def test_serve_scans_the_configured_bucket(s3: S3, runtime: Runtime, tmp_path: Path) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "in/people.csv", people_csv(tmp_path, 60, 3))
    settings = runtime.settings.model_copy(update={
        "bucket_url": f"s3://{bucket}/in", "bucket_endpoint_url": s3.endpoint,
        "bucket_access_key_id": "testing", "bucket_interval_seconds": 1,
        "bucket_secret_access_key": SecretStr("testing"), "ingest_workers": 1,
        "http_sources_enabled": False})
    served = Runtime(settings=settings, store=runtime.store, engine=runtime.engine)
    with TestClient(create_app(runtime=served)):
        until(lambda: [j.status for j in jobs(runtime.engine)] == ["succeeded"])
    [job] = jobs(runtime.engine)
    assert job.origin == "bucket" and job.rows_read == 60


def cli(args: list[str], tmp_path: Path, database_url: str, **env: str) -> \
        subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("RECORDBANK_", "AWS_"))}
    base.update(RECORDBANK_DATA_DIR=str(tmp_path / "data"), RECORDBANK_DATABASE_URL=database_url,
                **env)
    command = args if args and args[0] == "serve" else ["watch-bucket", *args]
    return subprocess.run([sys.executable, "-m", "recordbank.cli", *command],
                          env=base, capture_output=True, text=True, timeout=180)


def test_the_watch_bucket_command(s3: S3, tmp_path: Path, database_url: str) -> None:
    bucket = s3.bucket()
    s3.put(bucket, "in/one.csv", people_csv(tmp_path, 5, 4))
    env = {"RECORDBANK_BUCKET_ENDPOINT_URL": s3.endpoint,
           "RECORDBANK_BUCKET_ACCESS_KEY_ID": "testing",
           "RECORDBANK_BUCKET_SECRET_ACCESS_KEY": "testing"}
    ok = cli([f"s3://{bucket}/in", "--once"], tmp_path, database_url, **env)
    assert ok.returncode == 0, ok.stderr
    assert "1 new object(s) queued, 0 already known, 0 failed" in ok.stdout
    again = cli(["--once"], tmp_path, database_url, RECORDBANK_BUCKET_URL=f"s3://{bucket}/in",
                **env)
    assert again.returncode == 0 and "0 new object(s) queued" in again.stdout
    missing = cli(["s3://no-such-bucket", "--once"], tmp_path, database_url, **env)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout
    bad = cli(["http://nope", "--once"], tmp_path, database_url, **env)
    assert bad.returncode == 2 and "expected s3://bucket" in bad.stderr
    assert "Traceback" not in bad.stderr
    secret_url = cli(["--once"], tmp_path, database_url,
                     RECORDBANK_BUCKET_URL="s3://id:hunter2secret@bucket")
    assert secret_url.returncode == 2 and "RECORDBANK_BUCKET_URL" in secret_url.stderr
    assert "hunter2secret" not in secret_url.stderr + secret_url.stdout
    none = cli(["--once"], tmp_path, database_url)
    assert none.returncode == 2 and "no bucket" in none.stderr
    serve = cli(["serve"], tmp_path, database_url, RECORDBANK_BUCKET_URL="bucket/in")
    assert serve.returncode == 2 and "Traceback" not in serve.stderr
    assert "RECORDBANK_BUCKET_URL: bucket URL 'bucket/in': expected s3://" in serve.stderr
