"""Request and response shapes of the admin account routes (OpenAPI; handlers write JSON bytes).

Requests are strict about their shape (unknown fields refused, no bool for an int) so that a
typo in an admin's request fails loudly instead of silently doing less than asked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recordbank.accounts.admin import EMAIL_MAX, normalize_email
from recordbank.accounts.audit import ACTIONS
from recordbank.accounts.users import AccountError
from recordbank.api.ratelimit import parse_limits
from recordbank.usage.report import as_utc

Role = Literal["user", "admin"]
Status = Literal["active", "disabled"]
Scope = Literal["query", "export", "ingest", "admin"]
Action = Literal["user.create", "user.update", "credits.grant", "credits.adjust", "key.issue",
                 "key.rotate", "key.revoke", "source.create", "source.update", "source.enable",
                 "source.disable", "source.delete", "source.run", "webhook.create",
                 "webhook.delete"]
assert get_args(Action) == ACTIONS, "audit.ACTIONS and schemas_admin.Action must agree"
NAME_MAX = 200
REASON_MAX = 1000
# Per request: more than a trillion credits is a typo, and sums of many near-MAX_CREDITS
# grants would overflow SQLite's 64-bit integers.
MAX_CHANGE = 10**12


_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"  # for query parameters


def plain_text(value: str, field: str, *, lines: bool = False) -> str:
    """Refuse control characters and lone surrogates: neither database stores them (NUL,
    unencodable text), and nobody means them in a name or a reason."""
    found = (_CONTROL_BUT_LINES if lines else _CONTROL).search(value)
    if found:
        raise ValueError(f"{field} contains the control or invalid character "
                         f"U+{ord(found.group()):04X}")
    return value


def _rate_limit(value: str | None) -> str | None:
    if value is None:
        return None
    spec = value.strip()
    parse_limits(spec)  # ValueError names the bad part
    return spec


def future_utc(value: datetime | None) -> datetime | None:
    """Naive times are UTC; a time not in the future could never apply."""
    if value is None:
        return None
    aware = as_utc(value)  # 0001-01-01T00:00+01:00 has no UTC time: clamped, not a crash
    if aware <= datetime.now(UTC):
        raise ValueError(f"expires_at {aware.isoformat()} is not in the future")
    return aware


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Strict):
    email: str = Field(max_length=EMAIL_MAX, description="Unique; stored lower-cased")
    name: str = Field(default="", max_length=NAME_MAX)
    role: Role = "user"
    status: Status = "active"
    rate_limit: str | None = Field(default=None, max_length=200, description=(
        "This user's own per-key limits, e.g. `20/second;1200/minute`; null = the default"))

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            return normalize_email(plain_text(value, "email"))
        except AccountError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return plain_text(value, "name")

    @field_validator("rate_limit")
    @classmethod
    def _limits(cls, value: str | None) -> str | None:
        return _rate_limit(value)


class UserUpdate(_Strict):
    """Only the fields sent change; `rate_limit: null` goes back to the default limits."""

    name: str | None = Field(default=None, max_length=NAME_MAX)
    role: Role | None = None
    status: Status | None = Field(default=None, description=(
        "`disabled` refuses every key of the user within a second"))
    rate_limit: str | None = Field(default=None, max_length=200)

    @field_validator("rate_limit")
    @classmethod
    def _limits(cls, value: str | None) -> str | None:
        return _rate_limit(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else plain_text(value, "name")

    @model_validator(mode="after")
    def _nulls(self) -> UserUpdate:
        for field in ("name", "role", "status"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null (only rate_limit can)")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields sent, and only those."""
        return {f: getattr(self, f) for f in sorted(self.model_fields_set)}


class CreditChangeRequest(_Strict):
    amount: int = Field(strict=True, ge=-MAX_CHANGE, le=MAX_CHANGE, description=(
        "Positive: a grant (optionally expiring). Negative: an adjustment taken from the "
        "balance, never below zero."))
    reason: str = Field(min_length=1, max_length=REASON_MAX, description="Kept in the ledger")
    expires_at: datetime | None = Field(default=None, description=(
        "Grants only: the credits stop counting at this time (naive = UTC)"))

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("amount must not be 0")
        return value

    @model_validator(mode="after")
    def _expiry_only_for_grants(self) -> CreditChangeRequest:
        if self.amount < 0 and self.expires_at is not None:
            raise ValueError("expires_at applies to grants (positive amounts) only")
        return self

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a reason is required")
        return plain_text(value.strip(), "reason", lines=True)

    @field_validator("expires_at")
    @classmethod
    def _expiry(cls, value: datetime | None) -> datetime | None:
        return future_utc(value)


class KeyCreate(_Strict):
    name: str = Field(default="", max_length=NAME_MAX, description="A label for the key")
    scopes: list[Scope] | None = Field(default=None, max_length=4, description=(
        "Default: query + export"))
    expires_at: datetime | None = Field(default=None, description="Naive = UTC")
    admin: bool = Field(default=False, description="Add the admin scope")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return plain_text(value, "name")

    @field_validator("expires_at")
    @classmethod
    def _expiry(cls, value: datetime | None) -> datetime | None:
        return future_utc(value)


class UserPublic(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    status: Status
    rate_limit: str | None
    created_at: str | None
    updated_at: str | None


class KeyPublic(BaseModel):
    """Never the hash; the plaintext only in the answer that creates the key."""

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The visible start of the key, e.g. rb_live_ab12cd34")
    scopes: list[str]
    state: Literal["active", "revoked", "expired"]
    created_at: str | None
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


class IssuedKeyPublic(KeyPublic):
    key: str = Field(description="The plaintext key: shown in this answer only, never again")
    replaced_key_id: int | None = Field(default=None, description="Rotation: the revoked key")


class UserCredits(BaseModel):
    balance: int
    held: int


class UserDetail(UserPublic):
    keys: list[KeyPublic]
    credits: UserCredits


class CreditChange(BaseModel):
    user_id: int
    kind: Literal["grant", "adjustment"]
    amount: int
    reason: str
    expires_at: str | None
    grant_id: int | None = Field(description="The new grant (grants only)")
    ledger_entry_id: int | None
    balance: int = Field(description="The user's spendable credits after the change")


class AuditEntry(BaseModel):
    id: int
    created_at: str
    actor_user_id: int | None
    actor_key_id: int | None
    action: str
    target_type: Literal["user", "key", "source", "webhook"]
    target_id: int | None
    details: dict[str, Any]
    request_id: str


class PageMetadata(BaseModel):
    total: int
    limit: int
    offset: int
    returned: int


class KeyRevoked(BaseModel):
    already_revoked: bool = Field(description="True when the key was revoked before this call")


class _Envelope(BaseModel):
    status: Literal["success"]


class UserEnvelope(_Envelope):
    data: UserPublic


class UserListEnvelope(_Envelope):
    data: list[UserPublic]
    metadata: PageMetadata


class UserDetailEnvelope(_Envelope):
    data: UserDetail


class IssuedKeyEnvelope(_Envelope):
    data: IssuedKeyPublic


class KeyEnvelope(_Envelope):
    data: KeyPublic
    metadata: KeyRevoked


class CreditChangeEnvelope(_Envelope):
    data: CreditChange


class AuditListEnvelope(_Envelope):
    data: list[AuditEntry]
    metadata: PageMetadata
