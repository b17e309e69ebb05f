"""Per-source settings decided once per file, never per row."""

from __future__ import annotations

import re
from collections.abc import Sequence

_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})\b")


def choose_date_order(values: Sequence[str | None], default: str = "MDY") -> str:
    """Day/month order for a whole file from its sample: a first part above 12 means DMY,
    a second part above 12 means MDY; no evidence (or both) keeps the default."""
    day_first = month_first = False
    for value in values:
        if not value:
            continue
        m = _NUMERIC_DATE.match(value)
        if not m:
            continue
        a, b = int(m.group(1)), int(m.group(2))
        day_first |= a > 12 >= b
        month_first |= b > 12 >= a
    if day_first and not month_first:
        return "DMY"
    if month_first and not day_first:
        return "MDY"
    return default
