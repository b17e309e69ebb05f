"""The objects a watched bucket has shown, so that no restart downloads them again.

One row per (bucket, key): the ETag and size last taken, the checksum of the bytes that came,
and the job they made. An object whose ETag or size differs from its row is new content.

While a watcher downloads an object it holds a claim on that (bucket, key, ETag) with a time
limit, so that two watchers of one bucket (two `serve` processes, or `serve` and `recordbank
watch-bucket`) do not both download it; a watcher that died mid-download loses the claim when
its time runs out, and the next scan takes the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Integer,
    String,
    UniqueConstraint,
    delete,
    select,
)
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


class BucketClaim(Base):
    __tablename__ = "bucket_claims"
    __table_args__ = (UniqueConstraint("bucket", "key", "etag", name="uq_bucket_claims_object"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def claim(engine: Engine, *, bucket: str, key: str, etag: str, owner: str,
          seconds: float) -> bool:
    """Take the download of this object version for `seconds`; False while another watcher's
    claim on it has not run out. One statement (insert, or take over an expired claim)."""
    now = utcnow()
    values = {"bucket": bucket, "key": key, "etag": etag, "owner": owner,
              "expires_at": now + timedelta(seconds=seconds)}
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(BucketClaim).values(**values)
    stmt = insert.on_conflict_do_update(
        index_elements=["bucket", "key", "etag"],
        set_={"owner": insert.excluded.owner, "expires_at": insert.excluded.expires_at},
        where=(BucketClaim.expires_at < now) | (BucketClaim.owner == owner),
    ).returning(BucketClaim.id)
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def unclaim(engine: Engine, *, bucket: str, key: str, etag: str, owner: str) -> None:
    """End this watcher's claim (the object is remembered, or its download failed)."""
    with engine.begin() as conn:
        conn.execute(delete(BucketClaim).where(
            BucketClaim.bucket == bucket, BucketClaim.key == key, BucketClaim.etag == etag,
            BucketClaim.owner == owner))
