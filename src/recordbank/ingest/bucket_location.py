"""Where a watched bucket is: `s3://bucket/prefix`, checked when the settings are read.

Kept apart from ingest/bucket_watch.py (and boto3) so that reading the settings stays cheap.
Error texts never repeat a value that holds credentials (`s3://key:secret@bucket`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# S3's rules, widened to what older buckets and other S3-compatible stores allow (upper case,
# underscores, up to 255 characters); the store itself has the last word.
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")


@dataclass(frozen=True)
class BucketLocation:
    bucket: str
    prefix: str  # "" (the whole bucket) or a folder ending with "/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _shown(value: str) -> str:
    return "(a URL with credentials, not repeated here)" if "@" in value else repr(value[:200])


def parse_bucket_url(value: str) -> BucketLocation:
    """`s3://bucket` or `s3://bucket/folder/...`; the prefix is a folder, so `s3://b/in` watches
    `in/...` and not `inbox/...`. ValueError with the reason otherwise."""
    raw = value.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):  # urlsplit would drop some silently
        raise ValueError("bucket URL: control characters are not allowed")
    parts = urlsplit(raw)
    if parts.scheme.lower() != "s3" or not raw.lower().startswith("s3://"):
        raise ValueError(f"bucket URL {_shown(raw)}: expected s3://bucket or s3://bucket/prefix")
    if "@" in parts.netloc:
        raise ValueError("bucket URL: credentials do not belong in the URL; set "
                         "RECORDBANK_BUCKET_ACCESS_KEY_ID and RECORDBANK_BUCKET_SECRET_ACCESS_KEY")
    if parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ValueError(f"bucket URL {_shown(raw)}: no query string or fragment allowed")
    bucket = parts.netloc
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ValueError(f"bucket URL {_shown(raw)}: {bucket!r} is not a valid bucket name "
                         "(3-255 letters, digits, '.', '-', '_')")
    prefix = parts.path.lstrip("/")
    if len(prefix.encode()) > 900:
        raise ValueError(f"bucket URL {_shown(raw)}: the prefix is too long")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return BucketLocation(bucket, prefix)


def check_endpoint_url(value: str) -> str:
    """An S3-compatible endpoint: http(s)://host[:port][/path]; "" (AWS itself) passes."""
    raw = value.strip()
    if not raw:
        return ""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise ValueError("bucket endpoint URL: control characters are not allowed")
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bucket endpoint URL {_shown(raw)}: expected http(s)://host[:port]")
    if "@" in parts.netloc:
        raise ValueError("bucket endpoint URL: credentials do not belong in the URL; set "
                         "RECORDBANK_BUCKET_ACCESS_KEY_ID and RECORDBANK_BUCKET_SECRET_ACCESS_KEY")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"bucket endpoint URL {_shown(raw)}: bad port") from None
    return raw
