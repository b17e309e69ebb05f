"""What a query costs, in whole credits.

Price = base + rows returned x per_row + started compute seconds beyond the free ones x
per_second, rounded up. With the defaults (1, 0.01, 1, 1 free second) that is "1 + rows/100,
plus 1 per started compute second beyond the first".

All money arithmetic is Decimal: with floats, 100 rows at 0.07 would be 7.000000000000001 and
round up to 8. Measured seconds arrive as floats; they are converted exactly (Decimal(float)
keeps the binary value) and only ever rounded up to whole started seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recordbank.config import Settings

# rows_affordable() when rows are free: "any number", but still a number a caller can compare.
UNLIMITED_ROWS = 2**63 - 1
# Enough digits that products and quotients of int64 counts and configured rates are exact
# (the default context keeps 28 digits and would round them silently).
_PRECISION = 80


def _whole(name: str, value: object) -> int:
    """A non-negative int; bool is refused although it is an int subclass."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _rate(name: str, value: object) -> Decimal:
    """A finite non-negative Decimal rate. Floats are refused: they carry binary noise."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal or int, got {type(value).__name__}")
    rate = Decimal(value)
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"{name} must be a finite Decimal >= 0, got {value}")
    return rate


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class Pricing:
    base: Decimal
    per_row: Decimal
    per_second: Decimal
    free_seconds: int

    def __post_init__(self) -> None:
        # frozen: normalise through object.__setattr__ (ints become Decimals).
        object.__setattr__(self, "base", _rate("base", self.base))
        object.__setattr__(self, "per_row", _rate("per_row", self.per_row))
        object.__setattr__(self, "per_second", _rate("per_second", self.per_second))
        _whole("free_seconds", self.free_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pricing:
        return cls(base=settings.price_base, per_row=settings.price_per_row,
                   per_second=settings.price_per_second, free_seconds=settings.price_free_seconds)

    def _billed_seconds(self, started_seconds: int) -> int:
        return max(0, started_seconds - self.free_seconds)

    def _price(self, rows: int, started_seconds: int) -> Decimal:
        with localcontext(prec=_PRECISION):
            return (self.base + rows * self.per_row
                    + self._billed_seconds(started_seconds) * self.per_second)

    def cost(self, rows: int, seconds: float) -> int:
        """The real cost of a query that returned `rows` rows and ran `seconds` seconds.

        A query stopped at its time limit can overrun the limit by a little, so this can exceed
        max_cost(); ledger.settle() clips the charge to the hold, which is what was promised.
        """
        _whole("rows", rows)
        if isinstance(seconds, bool) or not isinstance(seconds, float | int):
            raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds}")
        with localcontext(prec=_PRECISION):  # exact conversion, then whole started seconds
            started = _ceil(Decimal(seconds))
        return _ceil(self._price(rows, started))

    def max_cost(self, rows: int, time_limit_seconds: int) -> int:
        """The hold for a query: all `rows` returned and the whole time limit used."""
        _whole("rows", rows)
        _whole("time_limit_seconds", time_limit_seconds)
        return _ceil(self._price(rows, time_limit_seconds))

    def rows_affordable(self, credits: int, time_limit_seconds: int) -> int:
        """The most rows r with max_cost(r, time_limit_seconds) <= credits, or 0 if none.

        0 is also the answer when not even an empty result is affordable; callers that care
        compare max_cost(0, limit) with the balance. ceil(x) <= credits exactly when
        x <= credits (credits is whole), so the bound is a floor of the remaining budget.
        """
        if isinstance(credits, bool) or not isinstance(credits, int):
            raise TypeError(f"credits must be an int, got {type(credits).__name__}")
        _whole("time_limit_seconds", time_limit_seconds)
        budget = Decimal(credits) - self._price(0, time_limit_seconds)
        if budget < 0:
            return 0
        if self.per_row == 0:
            return UNLIMITED_ROWS
        with localcontext(prec=_PRECISION):
            rows = int((budget / self.per_row).to_integral_value(rounding=ROUND_FLOOR))
        # Division is rounded to the context precision; step back if that rounded up.
        while rows > 0 and self.max_cost(rows, time_limit_seconds) > credits:
            rows -= 1
        return min(rows, UNLIMITED_ROWS)
