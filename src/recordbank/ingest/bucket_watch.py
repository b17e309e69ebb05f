"""A watched S3-compatible bucket (AWS S3, MinIO, Ceph, R2 ...): each new object becomes a job.

A scan lists the objects under the prefix page by page (only one page is held at a time) and
skips what the watched folder skips (hidden, backup and partial-download names, anything under
a hidden "folder"), "folder" markers (keys ending in "/") and empty objects. An object whose
(key, ETag, size) is not in the `bucket_objects` table is downloaded as a stream to
`<landing>/.incoming/`, hashed on the way, moved to `<landing>/<sha256>/<name>` and queued
(origin "bucket"); the queue answers content that is already queued or ingested, whatever its
key, and that copy is removed again. Only then is the object remembered, so an object whose
download failed is tried again at the next scan, and one whose ETag changed (new content under
the same key) is taken again. S3 shows an object only once its upload is complete, so there is
nothing to wait for, unlike in a folder.

What stops a whole scan (endpoint unreachable, access refused, no such bucket) raises
BucketError with a one-line reason; it never holds the secret key.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from sqlalchemy import Engine

from recordbank.ingest import bucket_model
from recordbank.ingest.bucket_location import BucketLocation, parse_bucket_url
from recordbank.ingest.landed_files import enqueue_copy
from recordbank.ingest.landing import INCOMING, MAX_NAME, place
from recordbank.ingest.sources import CopyStopped, copy_hashed
from recordbank.ingest.watch import ScanError, ScanResult, ignored

if TYPE_CHECKING:
    from recordbank.config import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # S3's own maximum per listing call
CLAIM_SECONDS = 1800.0  # a download this watcher died in is taken by another after this
UNREADABLE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")  # archived: a GET fails until restored
ACCESS_CODES = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed", "403")


class BucketError(ScanError):
    """The bucket cannot be listed: unreachable, access refused, missing."""


@dataclass(frozen=True)
class BucketAccess:
    """How to reach the store; credentials unset use boto3's own chain (AWS_* variables,
    ~/.aws, an instance role)."""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)  # never shown

    @classmethod
    def from_settings(cls, settings: Settings) -> BucketAccess:
        return cls(endpoint_url=settings.bucket_endpoint_url or None,
                   region=settings.bucket_region or None,
                   access_key_id=settings.bucket_access_key_id or None,
                   secret_access_key=settings.bucket_secret_access_key.get_secret_value()
                   or None)

    def client(self) -> Any:
        region = self.region or ("us-east-1" if self.endpoint_url else None)
        config = Config(connect_timeout=10, read_timeout=60,
                        retries={"max_attempts": 3, "mode": "standard"})
        return boto3.client("s3", endpoint_url=self.endpoint_url or None, region_name=region,
                            aws_access_key_id=self.access_key_id or None,
                            aws_secret_access_key=self.secret_access_key or None, config=config)


class BucketWatcher:
    def __init__(self, engine: Engine, location: BucketLocation | str, landing: Path,
                 access: BucketAccess | None = None, *, source: str | None = None,
                 page_size: int = PAGE_SIZE, stop: threading.Event | None = None,
                 claim_seconds: float = CLAIM_SECONDS) -> None:
        """source: the jobs' source name; default the key's "folder" below the prefix, so that
        s3://b/in/crm/export.csv watched at s3://b/in ingests as "crm" (at the top: the stem)."""
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}")
        self.engine, self.landing = engine, Path(landing)
        self.location = parse_bucket_url(location) if isinstance(location, str) else location
        self.access = access or BucketAccess()
        self.source, self.page_size = source, page_size
        self.stop = stop or threading.Event()
        self.label = f"watched bucket {self.location}"
        self.claim_seconds = claim_seconds
        self.owner = f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.access.client()
        return self._client

    def _explain(self, exc: Exception) -> str:
        """One line about a failed call, without the secret."""
        where = self.access.endpoint_url or "AWS S3"
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code, message = str(err.get("Code", "")), str(err.get("Message", ""))
            if code in ("NoSuchBucket", "404"):
                text = f"bucket {self.location.bucket!r} does not exist at {where}"
            elif code in ACCESS_CODES:
                text = (f"access refused by {where} ({code}: {message}); check "
                        "RECORDBANK_BUCKET_ACCESS_KEY_ID / _SECRET_ACCESS_KEY and the "
                        "bucket's policy")
            else:
                text = f"{where} answered {code or 'an error'}: {message or exc}"
        elif isinstance(exc, NoCredentialsError):
            text = ("no credentials: set RECORDBANK_BUCKET_ACCESS_KEY_ID and "
                    "RECORDBANK_BUCKET_SECRET_ACCESS_KEY (or AWS_* variables)")
        else:
            text = f"cannot reach {where}: {exc}"
        secret = self.access.secret_access_key
        return text.replace(secret, "***") if secret else text

    def _pages(self) -> Any:
        paginator = self.client.get_paginator("list_objects_v2")
        return iter(paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix,
                                       PaginationConfig={"PageSize": self.page_size}))

    def scan(self) -> ScanResult:
        """Download and queue every object not taken before. BucketError when the listing
        fails (objects of the pages before it are taken and remembered)."""
        result = ScanResult()
        try:
            pages = self._pages()
        except (BotoCoreError, ClientError) as exc:
            raise BucketError(self._explain(exc)) from None
        while not self.stop.is_set():
            try:
                page = next(pages)
            except StopIteration:
                break
            except (BotoCoreError, ClientError) as exc:
                raise BucketError(self._explain(exc)) from None
            wanted = [o for o in page.get("Contents", []) if self._wanted(o)]
            known = bucket_model.seen(self.engine, self.location.bucket,
                                      [o["Key"] for o in wanted])
            for obj in wanted:
                if self.stop.is_set():
                    break
                if known.get(obj["Key"]) != (obj["ETag"], int(obj["Size"])):
                    self._take_once(obj, result)
        return result

    def _wanted(self, obj: dict[str, Any]) -> bool:
        key: str = obj["Key"]
        relative = key[len(self.location.prefix):]
        return bool(relative) and not key.endswith("/") and int(obj.get("Size", 0)) > 0 \
            and not ignored(PurePosixPath(relative)) \
            and obj.get("StorageClass") not in UNREADABLE_CLASSES

    def _source_for(self, key: str) -> str:
        if self.source:
            return self.source
        relative = PurePosixPath(key[len(self.location.prefix):])
        return (relative.parent.name if len(relative.parts) > 1 else relative.stem)[:200]

    def _download(self, key: str) -> _Landed | None:
        """The object streamed to <landing>/<sha256>/<name>; None when stopped. Nothing but
        a complete download reaches the landing folder."""
        name = _file_name(key)
        folder = self.landing / INCOMING / uuid.uuid4().hex
        try:
            folder.mkdir(parents=True)
            temp = folder / name
            obj = self.client.get_object(Bucket=self.location.bucket, Key=key)
            with obj["Body"] as body, temp.open("wb") as fh:
                checksum, size = copy_hashed(body, fh, stop=self.stop.is_set)
            final = self.landing / checksum / name
            created = place(temp, final)  # False: there already, a job may be reading it
            return _Landed(final, checksum, size, created, str(obj.get("ETag", "")))
        except CopyStopped:
            return None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _take_once(self, obj: dict[str, Any], result: ScanResult) -> None:
        """Take an object under a claim, so that another watcher of this bucket does not
        download it at the same time (or again, just after this one remembered it)."""
        key, version = obj["Key"], (obj["ETag"], int(obj["Size"]))
        claim = {"bucket": self.location.bucket, "key": key, "etag": obj["ETag"],
                 "owner": self.owner}
        if not bucket_model.claim(self.engine, **claim, seconds=self.claim_seconds):
            result.waiting += 1  # another watcher is downloading it right now
            return
        try:
            if bucket_model.seen(self.engine, self.location.bucket, [key]).get(key) != version:
                self._take(key, result)
        finally:
            bucket_model.unclaim(self.engine, **claim)

    def _take(self, key: str, result: ScanResult) -> None:
        """Download one object, queue it and remember it; a failed download is logged and
        counted, and the object is tried again at the next scan."""
        try:
            landed = self._download(key)
        except (BotoCoreError, ClientError) as exc:
            result.failed += 1
            log.warning("%s: cannot download %s (tried again next scan): %s", self.label, key,
                        self._explain(exc))
            return
        except OSError as exc:
            result.failed += 1
            log.warning("%s: cannot store %s in the landing folder (tried again next scan): "
                        "%s", self.label, key, exc)
            return
        if landed is None:
            return
        made = enqueue_copy(self.engine, landed, source=self._source_for(key), options={},
                            origin="bucket")
        if made.kind == "queued":
            result.queued.append(made.job_id)
        else:
            result.known += 1
        bucket_model.remember(self.engine, bucket=self.location.bucket, key=key,
                              etag=landed.etag, size=landed.size, checksum=landed.checksum,
                              job_id=made.job_id)


@dataclass(frozen=True)
class _Landed:
    path: Path
    checksum: str
    size: int
    created: bool  # False: the same bytes under the same name were there already (kept)
    etag: str  # of the object as downloaded


def _file_name(key: str) -> str:
    """The key's last part as a file name: no control characters, not too long."""
    name = "".join(ch for ch in key.rsplit("/", 1)[-1] if ch >= " " and ch != "\x7f").strip()
    if len(name) > MAX_NAME:
        stem, ext = os.path.splitext(name)
        name = stem[: MAX_NAME - len(ext)] + ext
    return name or "object"
