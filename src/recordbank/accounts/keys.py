"""API key material: generate, hash, check. The plaintext exists only in the creation answer."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

KEY_PREFIX = "rb_live_"
_ALPHABET = string.ascii_letters + string.digits
_BODY_CHARS = 40  # ~238 bits of randomness
VISIBLE_CHARS = len(KEY_PREFIX) + 8  # "rb_live_ab12cd34": shown in lists, used to find the key


def generate_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_CHARS))


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def hash_key(key: str) -> str:
    """SHA-256 is enough for 238-bit random keys: there is nothing to guess by brute force."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_key(key: str) -> bool:
    return (len(key) == len(KEY_PREFIX) + _BODY_CHARS and key.startswith(KEY_PREFIX)
            and all(c in _ALPHABET for c in key[len(KEY_PREFIX):]))


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
