"""Account status to the closed set active | pending | inactive | unknown.

Sources say the same thing a hundred ways (1/0, Y/N, "ENABLED", "Cancelled", "trial").
Input is folded like countries (lowercase, accents and punctuation removed) and looked up.
Empty input is ``unknown`` without a code (nothing was claimed); a non-empty value we do not
recognize is ``unknown`` with ``status:unknown``, so new spellings surface in the reports.
"""

from __future__ import annotations

from typing import Final

from .codes import STATUS_UNKNOWN
from .countries import fold_sql
from .country_aliases import fold
from .sql import NormalizedSQL, lookup
from .text import clean_text

STATUS_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "active": (
        "active", "1", "true", "t", "yes", "y", "on", "enabled", "enable", "live", "current",
        "verified", "confirmed", "approved", "subscribed", "member", "paid", "paying", "customer",
        "open", "ok", "a", "activated", "valid", "in good standing", "aktiv", "actif", "activo",
        "ja", "oui", "si", "sí",
    ),
    "pending": (
        "pending", "trial", "trialing", "free trial", "lead", "prospect", "new", "invited",
        "unverified", "not verified", "unconfirmed", "awaiting", "awaiting confirmation",
        "waiting", "onboarding", "in progress", "provisional", "review", "in review",
        "pending verification", "pending approval", "registered", "p", "signup", "signed up",
        "incomplete", "requested",
    ),
    "inactive": (
        "inactive", "0", "false", "f", "no", "n", "off", "disabled", "disable", "suspended",
        "cancelled", "canceled", "closed", "deleted", "banned", "blocked", "expired", "churned",
        "unsubscribed", "deactivated", "terminated", "archived", "lapsed", "dormant", "locked",
        "former", "opted out", "opt out", "optout", "removed", "i", "not active", "void",
        "revoked", "rejected", "declined", "frozen", "ended", "left", "inaktiv", "nein", "non",
    ),
    "unknown": ("unknown", "na", "unk", "tbd", "other", "n a"),
}


def status_aliases() -> dict[str, str]:
    """Folded spelling -> status. A spelling listed under two statuses is a bug: fail loudly."""
    table: dict[str, str] = {}
    for status, words in STATUS_SYNONYMS.items():
        for word in words:
            key = fold(word)
            if table.get(key, status) != status:
                raise ValueError(f"status synonym {word!r} is listed twice")
            table[key] = status
    return table


def status(expr: str) -> NormalizedSQL:
    """Status (LowCardinality-friendly String, never '') and ``status:unknown``."""
    # One scalar: the status ('unknown' for empty input), '?' for an unknown spelling. Keys
    # end in '.' (never part of a fold): input made only of symbols is unknown, not empty.
    c = clean_text(expr)
    table = {"": "unknown", **{k + ".": v for k, v in status_aliases().items()}}
    found = lookup(f"concat({fold_sql(c)}, if({c} = '', '', '.'))", table, default="?")
    return NormalizedSQL(found, (STATUS_UNKNOWN,), value_template="if(@E@ = '?', 'unknown', @E@)",
                         flags_template="toUInt8(@E@ = '?')")
