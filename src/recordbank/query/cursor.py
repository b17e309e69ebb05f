"""Opaque page cursors: the last row's sort values, bound to one query and signed.

A token is base64url(payload) "." base64url(HMAC-SHA256(secret, payload)), payload being
compact JSON {"v": 1, "q": fingerprint, "k": [sort values]}. The fingerprint covers the
checked filters and the sort (not fields or limit, which may change between pages), so a
cursor cannot be replayed against another query, and the signature keeps callers from writing
their own keyset values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from typing import Any

from recordbank.query.model import MAX_CURSOR_CHARS, Condition, InvalidQuery

_VERSION = 1
_DOMAIN = b"recordbank-cursor\x00"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def fingerprint(conditions: Sequence[Condition], sort: Sequence[tuple[str, bool]]) -> str:
    """A stable digest of what decides the rows and their order."""
    canon = [[c.field, c.op, sorted(c.value, key=repr) if isinstance(c.value, list) else c.value]
             for c in sorted(conditions, key=lambda c: (c.field, c.op))]
    text = json.dumps({"where": canon, "sort": [[f, d] for f, d in sort]},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), _DOMAIN + payload, hashlib.sha256).digest()


def encode_cursor(values: Sequence[Any], query_fingerprint: str, secret: str) -> str:
    payload = json.dumps({"v": _VERSION, "q": query_fingerprint, "k": list(values)},
                         separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def decode_cursor(token: str, query_fingerprint: str, secret: str, n_values: int) -> list[Any]:
    """The sort values in token; InvalidQuery if forged, damaged or made for another query."""
    invalid = InvalidQuery("INVALID_QUERY", "invalid cursor")
    if not isinstance(token, str) or len(token) > MAX_CURSOR_CHARS \
            or not _TOKEN.fullmatch(token):
        raise invalid
    body, sig = token.split(".")
    try:
        payload, mac = _unb64(body), _unb64(sig)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise invalid
    try:
        data = json.loads(payload)
    except ValueError:
        raise invalid from None
    if not isinstance(data, dict) or data.get("v") != _VERSION:
        raise invalid
    if data.get("q") != query_fingerprint:
        raise InvalidQuery("INVALID_QUERY", "cursor does not belong to this query")
    values = data.get("k")
    if not isinstance(values, list) or len(values) != n_values:
        raise invalid
    return values
