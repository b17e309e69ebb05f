"""Idempotency-Key: a retried billable request gets the stored answer and is not charged again.

The key is claimed before the work starts (a unique row per user and key), so two concurrent
requests with one key cannot both run; the second gets 409 until the first has finished.
Only successful answers are kept: after a failure the key is freed and a retry runs afresh.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from recordbank.api.errors import ApiError
from recordbank.billing.models import IdempotentResponse
from recordbank.db.session import session_scope

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    media_type: str
    headers: dict[str, str]
    body: bytes


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim(engine: Engine, user_id: int, key: str, print_: str) -> StoredAnswer | int:
    """Return the stored answer for a finished request, or the id of a fresh claim."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(400, "INVALID_QUERY",
                       f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters")
    try:
        with session_scope(engine) as session:
            row = IdempotentResponse(user_id=user_id, key=key, fingerprint=print_,
                                     state="pending")
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        pass
    with session_scope(engine) as session:
        found = session.scalar(select(IdempotentResponse).where(
            IdempotentResponse.user_id == user_id, IdempotentResponse.key == key))
        if found is None:  # freed between our insert and this read: let the client retry
            raise ApiError(409, "CONFLICT", "a request with this Idempotency-Key is in progress")
        if found.fingerprint != print_:
            raise ApiError(409, "CONFLICT",
                           "this Idempotency-Key was used for a different request")
        if found.state != "done" or found.body is None:
            raise ApiError(409, "CONFLICT", "a request with this Idempotency-Key is in progress")
        return StoredAnswer(found.status_code or 200, found.media_type or "application/json",
                            dict(found.headers or {}), bytes(found.body))


def complete(engine: Engine, claim_id: int, answer: StoredAnswer) -> None:
    with session_scope(engine) as session:
        session.execute(update(IdempotentResponse).where(IdempotentResponse.id == claim_id)
                        .values(state="done", status_code=answer.status_code,
                                media_type=answer.media_type, headers=answer.headers,
                                body=answer.body))


def abandon(engine: Engine, claim_id: int) -> None:
    with session_scope(engine) as session:
        session.execute(delete(IdempotentResponse).where(IdempotentResponse.id == claim_id))
