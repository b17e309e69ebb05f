"""Credit grants, holds and the append-only ledger.

Every change of a user's available credits is one ledger row with a signed amount, so the
ledger sums to the balance. Grants carry what is left of them (`remaining`) so that spending
and expiry can be told apart: spending takes from the grant that expires first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from recordbank.db.models import Base, utcnow

LEDGER_KINDS = ("grant", "adjustment", "hold", "settlement", "release", "refund", "expiry")
HOLD_STATUSES = ("open", "settled", "released")


def _pk() -> Any:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                         autoincrement=True)


class CreditGrant(Base):
    __tablename__ = "credit_grants"

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CreditHold(Base):
    __tablename__ = "credit_holds"
    __table_args__ = (Index("ix_credit_holds_user_status", "user_id", "status"),)

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    charged: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    # [[grant_id, credits], ...] taken from each grant, so a release gives them back.
    allocations: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    endpoint: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LedgerEntry(Base):
    __tablename__ = "credit_ledger"

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed change of available credits
    grant_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    hold_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotentResponse(Base):
    """The stored answer to a billable request sent with an Idempotency-Key."""

    __tablename__ = "idempotent_responses"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # method + path + query + body
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
