"""Stable validation codes written to ``records.validation_errors``: ``<field>:<problem>``.

They are part of the product's contract (queries filter on them), so they never change spelling.
"""

from __future__ import annotations

from typing import Final

EMAIL_INVALID: Final = "email:invalid"
PHONE_INVALID: Final = "phone:invalid"
COUNTRY_INVALID: Final = "country:invalid"
NAME_INVALID: Final = "name:invalid"
STATUS_UNKNOWN: Final = "status:unknown"
DATE_UNPARSEABLE: Final = "created_date:unparseable"
DATE_OUT_OF_RANGE: Final = "created_date:out-of-range"
IDENTITY_MISSING: Final = "identity:missing"

ALL_CODES: Final[tuple[str, ...]] = (
    EMAIL_INVALID,
    PHONE_INVALID,
    COUNTRY_INVALID,
    NAME_INVALID,
    STATUS_UNKNOWN,
    DATE_UNPARSEABLE,
    DATE_OUT_OF_RANGE,
    IDENTITY_MISSING,
)


def field_code(field: str, problem: str) -> str:
    """The code for a field other than the defaults (e.g. a second date column)."""
    return f"{field}:{problem}"
