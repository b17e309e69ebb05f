"""A real S3-compatible HTTP server for the bucket tests: moto's server on a free local port,
reached through boto3 like any S3 endpoint (MinIO, Ceph ...).

moto keeps its buckets in process-wide memory, so each server starts from a reset and every
test makes buckets of its own name. Access checking (IAM users, policies, signatures) is off
until a test turns it on with `enforce_auth()`; stopping the server turns it off again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine, select

from recordbank.db.models import Job
from recordbank.db.session import session_scope
from recordbank.ingest.bucket_watch import BucketAccess, BucketWatcher
from recordbank.sample import HEADER, generate_people, write_csv

ANYONE = "testing"  # the key id and secret moto takes while access checking is off


@dataclass
class S3:
    endpoint: str

    def client(self, key_id: str = ANYONE, secret: str = ANYONE, service: str = "s3") -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret)

    def bucket(self) -> str:
        name = f"rb-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=body)

    def user(self, actions: list[str]) -> tuple[str, str, str]:
        """An IAM user allowed `actions` on every resource: (key id, secret, user name)."""
        iam = self.client(service="iam")
        name = f"u-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"], name

    def enforce_auth(self, on: bool = True) -> None:
        """From now on every request must be signed by a known user and allowed by its policy."""
        httpx.post(f"{self.endpoint}/moto-api/reset-auth",
                   content=b"0" if on else b"inf").raise_for_status()

    def access(self, key_id: str = ANYONE, secret: str = ANYONE) -> BucketAccess:
        return BucketAccess(endpoint_url=self.endpoint, access_key_id=key_id,
                            secret_access_key=secret)

    def watcher(self, engine: Engine, url: str, landing: Path, **kw: Any) -> BucketWatcher:
        return BucketWatcher(engine, url, landing, kw.pop("access", None) or self.access(), **kw)


@contextmanager
def server(port: int) -> Iterator[S3]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    s3 = S3(f"http://127.0.0.1:{port}")
    httpx.post(f"{s3.endpoint}/moto-api/reset").raise_for_status()
    try:
        yield s3
    finally:
        s3.enforce_auth(False)  # process-wide in moto: never leak it into the next test
        moto.stop()


def calls(watcher: BucketWatcher, operation: str) -> list[str]:
    """Every `operation` (GetObject, ListObjectsV2) the watcher's client sends from now on."""
    seen: list[str] = []
    watcher.client.meta.events.register(f"before-call.s3.{operation}",
                                        lambda **kw: seen.append(operation))
    return seen


def people_csv(tmp: Path, n: int, seed: int) -> bytes:
    path = write_csv(tmp / f"p-{seed}-{n}.csv", generate_people(n, seed=seed), HEADER)
    return path.read_bytes()


def jobs(engine: Engine) -> list[Job]:
    with session_scope(engine) as s:
        return list(s.scalars(select(Job).order_by(Job.id)))
