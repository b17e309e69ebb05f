"""Settings from the environment; the defaults give a working embedded system under ./data/."""

from __future__ import annotations

import math
import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recordbank.ingest.bucket_location import check_endpoint_url, parse_bucket_url

_secrets: dict[str, str] = {}  # secret_key files already read (one disk read per process)


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value may hold a password (a URL with credentials).
    model_config = SettingsConfigDict(env_prefix="RECORDBANK_", extra="ignore",
                                      hide_input_in_errors=True)

    data_dir: Path = Path("./data")
    store_url: str = ""  # chdb:///abs/path or http(s)://user:pass@host:port/db
    database_url: str = ""  # sqlite:///… or postgresql://…
    redis_url: str = ""
    # Ingestion limits: bounded memory per batch, bounded decompressed size per file.
    batch_rows: int = Field(default=50_000, ge=100)
    # Let the engine read CSV/JSON/Parquet files itself (embedded store only: a ClickHouse
    # server cannot see this machine's files, so a server store always streams from Python).
    native_reads: bool = True
    max_decompressed_bytes: int = 50 * 1024**3
    max_compression_ratio: int = 200
    # HTTP uploads (POST /v1/ingest/uploads) land here before a worker ingests them; bodies
    # over max_upload_bytes are refused with 413 as their bytes arrive.
    landing_dir: Path | None = None  # default: data_dir/landing
    max_upload_bytes: int = Field(default=20 * 1024**3, ge=1)
    # Keep landed copies (uploads, HTTP source runs, bucket objects) after their content is
    # ingested; by default they are deleted then (ingest/landed_files.py).
    keep_landed_files: bool = False

    # API. The secret signs cursors; several API processes must share it (default: a random
    # secret kept in data_dir/secret_key, created on first use).
    secret_key: str = ""
    # Price = base + rows x per_row + started compute seconds beyond the free ones x per_second,
    # rounded up to whole credits.
    price_base: Decimal = Decimal("1")
    price_per_row: Decimal = Decimal("0.01")
    price_per_second: Decimal = Decimal("1")
    price_free_seconds: int = 1
    # max_execution_time of every API query (fractions allowed) -> 504 QUERY_TIMEOUT. At least
    # 1 ms: ClickHouse reads a value that rounds to 0 as "no limit".
    query_time_limit_seconds: float = Field(default=10, ge=0.001, le=3600)
    count_cap: int = Field(default=10_000_000, ge=1)  # exact total_records up to this
    max_offset: int = Field(default=10_000, ge=0)
    max_request_bytes: int = Field(default=1_048_576, ge=1024)  # JSON bodies -> 413
    rate_limit: str = "10/second;600/minute"  # per key, unless the user has its own
    auth_failure_limit: str = "20/minute"  # failed authentications per client address
    redis_prefix: str = "recordbank"  # namespace of our keys in Redis
    key_cache_seconds: float = Field(default=0.5, ge=0, le=1)  # revocation reaches all in 1 s
    hold_ttl_seconds: int = Field(default=900, ge=60)  # open holds older than this are stale
    export_chunk_rows: int = Field(default=65_536, ge=1024)
    # Ingest queue workers that `recordbank serve` runs as threads (0: none, e.g. when separate
    # `recordbank worker` processes do the work).
    ingest_workers: int = Field(default=1, ge=0, le=64)
    # A landing folder `recordbank serve` scans for new files (unset: none).
    watch_dir: Path | None = None
    watch_interval_seconds: float = Field(default=10, ge=0.1, le=86_400)
    watch_settle_seconds: float = Field(default=2, ge=0, le=3600)  # unchanged this long first
    # An S3-compatible bucket `recordbank serve` scans for new objects: s3://bucket/prefix
    # (unset: none). Endpoint for MinIO, Ceph, R2 ... (unset: AWS); credentials unset: boto3's
    # own chain (AWS_* variables, ~/.aws, an instance role).
    bucket_url: str = ""
    bucket_endpoint_url: str = ""
    bucket_region: str = ""
    bucket_access_key_id: str = ""
    bucket_secret_access_key: SecretStr = SecretStr("")  # never logged nor shown
    bucket_interval_seconds: float = Field(default=60, ge=1, le=86_400)
    # `recordbank serve` runs the scheduled HTTP sources that are due (`recordbank sources`).
    http_sources_enabled: bool = True
    # An export stops here, ending its stream with the cut signal (reason "time_limit").
    export_time_limit_seconds: float = Field(default=1800, ge=0.001, le=86_400)

    @field_validator("bucket_url")
    @classmethod
    def _bucket_url(cls, value: str) -> str:
        if value.strip():
            parse_bucket_url(value)  # ValueError: refused when the settings are read
        return value.strip()

    @field_validator("bucket_endpoint_url")
    @classmethod
    def _bucket_endpoint(cls, value: str) -> str:
        return check_endpoint_url(value)

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"chdb://{(self.data_dir / 'store').resolve()}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'recordbank.db').resolve()}"

    @property
    def billable_time_limit(self) -> int:
        """The time cap in the whole started seconds that pricing counts."""
        return max(1, math.ceil(self.query_time_limit_seconds))

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        cached = _secrets.get(str(path.resolve()))
        if cached:
            return cached
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            if not path.read_text().strip():
                path.write_text(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
        _secrets[str(path.resolve())] = secret
        return secret

    def resolved_landing_dir(self) -> Path:
        """Absolute: the path goes into the job, and a worker may run in another directory."""
        return (self.landing_dir or self.data_dir / "landing").resolve()

    @property
    def work_dir(self) -> Path:
        path = self.data_dir / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
