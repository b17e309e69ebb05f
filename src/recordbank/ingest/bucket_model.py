"""The objects a watched bucket has shown, so that no restart downloads them again.

One row per (bucket, key): the ETag and size last taken, the checksum of the bytes that came,
and the job they made. An object whose ETag or size differs from its row is new content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Engine, Integer, String, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from recordbank.db.models import Base, utcnow


class BucketObject(Base):
    __tablename__ = "bucket_objects"
    __table_args__ = (UniqueConstraint("bucket", "key", name="uq_bucket_objects_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))  # S3's limit: 1024 bytes
    etag: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def seen(engine: Engine, bucket: str, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
    """(etag, size) last taken for each of these keys that has a row (one page of a listing)."""
    if not keys:
        return {}
    stmt = (select(BucketObject.key, BucketObject.etag, BucketObject.size)
            .where(BucketObject.bucket == bucket, BucketObject.key.in_(list(keys))))
    with engine.connect() as conn:
        return {row.key: (row.etag, int(row.size)) for row in conn.execute(stmt)}


def remember(engine: Engine, *, bucket: str, key: str, etag: str, size: int, checksum: str,
             job_id: int | None) -> None:
    """Insert or replace the row of (bucket, key) in one statement, so that two watchers of the
    same bucket (two `serve` processes) cannot trip over each other."""
    values = {"bucket": bucket, "key": key, "etag": etag, "size": size, "checksum": checksum,
              "job_id": job_id, "seen_at": utcnow()}
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(BucketObject).values(**values)
    stmt = insert.on_conflict_do_update(
        index_elements=["bucket", "key"],
        set_={k: insert.excluded[k] for k in ("etag", "size", "checksum", "job_id", "seen_at")})
    with engine.begin() as conn:
        conn.execute(stmt)
