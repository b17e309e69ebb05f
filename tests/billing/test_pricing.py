"""Pricing: "1 + rows/100, plus 1 per started compute second beyond the first", in Decimal."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recordbank.billing.pricing import UNLIMITED_ROWS, Pricing
from recordbank.config import Settings

DEFAULT = Pricing.from_settings(Settings())


@pytest.mark.parametrize(("rows", "seconds", "cost"), [
    (0, 0.0, 1),
    (0, 0.999, 1),
    (0, 1.0, 1),          # the first second is free
    (0, 1.0001, 2),       # a started second beyond it costs 1
    (0, 2.0, 2),
    (0, 2.5, 3),
    (1, 0.0, 2),          # 1.01 rounds up
    (100, 0.0, 2),
    (101, 0.0, 3),
    (250, 3.5, 7),        # 1 + 2.5 + 3 = 6.5
    (1000, 0.2, 11),
    (0, 0, 1),            # int seconds are fine
])
def test_default_prices(rows: int, seconds: float, cost: int) -> None:
    assert DEFAULT.cost(rows, seconds) == cost


def test_defaults_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Pricing(Decimal(1), Decimal("0.01"), Decimal(1), 1) == DEFAULT
    monkeypatch.setenv("RECORDBANK_PRICE_BASE", "0.5")
    monkeypatch.setenv("RECORDBANK_PRICE_PER_ROW", "0.07")
    monkeypatch.setenv("RECORDBANK_PRICE_PER_SECOND", "2.5")
    monkeypatch.setenv("RECORDBANK_PRICE_FREE_SECONDS", "0")
    p = Pricing.from_settings(Settings())
    assert p == Pricing(Decimal("0.5"), Decimal("0.07"), Decimal("2.5"), 0)
    assert p.cost(10, 0.1) == 4  # 0.5 + 0.7 + 2.5 = 3.7


def test_decimal_not_float() -> None:
    """100 x 0.07 is 7.000000000000001 in floats, which would round up to 8."""
    assert 100 * 0.07 > 7
    p = Pricing(Decimal(0), Decimal("0.07"), Decimal(0), 0)
    assert p.cost(100, 0.0) == 7
    assert p.max_cost(100, 0) == 7
    assert p.rows_affordable(7, 0) == 100


def test_max_cost_is_all_rows_and_the_whole_time_limit() -> None:
    assert DEFAULT.max_cost(100, 10) == 11  # 1 + 1 + 9
    assert DEFAULT.max_cost(0, 1) == 1
    assert DEFAULT.max_cost(0, 0) == 1
    assert DEFAULT.max_cost(1, 10) == 11  # 10.01 rounds up
    assert DEFAULT.cost(100, 9.99) == DEFAULT.max_cost(100, 10)
    assert DEFAULT.cost(100, 10.05) == 12  # an overrun of the limit; settle() clips it


def test_rows_affordable_examples() -> None:
    assert DEFAULT.rows_affordable(11, 10) == 100
    assert DEFAULT.rows_affordable(12, 10) == 200
    assert DEFAULT.rows_affordable(10, 10) == 0   # exactly an empty result
    assert DEFAULT.rows_affordable(9, 10) == 0    # not even that
    assert DEFAULT.rows_affordable(0, 1) == 0
    assert DEFAULT.rows_affordable(-5, 1) == 0
    free_rows = Pricing(Decimal(1), Decimal(0), Decimal(1), 1)
    assert free_rows.rows_affordable(1, 1) == UNLIMITED_ROWS
    assert free_rows.rows_affordable(0, 1) == 0
    assert DEFAULT.rows_affordable(10**30, 10) == UNLIMITED_ROWS


rates = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False,
                    allow_infinity=False)


@given(base=rates, per_row=rates.filter(lambda d: d > 0), per_second=rates,
       free=st.integers(0, 5), credits=st.integers(0, 10**7), limit=st.integers(0, 60))
def test_rows_affordable_is_the_largest_affordable(base: Decimal, per_row: Decimal,
                                                   per_second: Decimal, free: int, credits: int,
                                                   limit: int) -> None:
    p = Pricing(base, per_row, per_second, free)
    rows = p.rows_affordable(credits, limit)
    assert rows >= 0
    if p.max_cost(0, limit) <= credits:
        assert p.max_cost(rows, limit) <= credits < p.max_cost(rows + 1, limit)
    else:
        assert rows == 0


@given(rows=st.integers(0, 10**9), seconds=st.floats(0, 10**6, allow_nan=False),
       limit=st.integers(0, 10**4))
def test_cost_matches_the_formula_and_the_hold_covers_it(rows: int, seconds: float,
                                                          limit: int) -> None:
    expected = 1 + rows / Decimal(100) + max(0, math.ceil(seconds) - 1)
    assert DEFAULT.cost(rows, seconds) == math.ceil(expected)
    assert DEFAULT.cost(rows, seconds) >= 1
    if seconds <= limit:
        assert DEFAULT.cost(rows, seconds) <= DEFAULT.max_cost(rows, limit)
    assert DEFAULT.cost(rows, seconds) <= DEFAULT.cost(rows + 1, seconds)


@pytest.mark.parametrize(("args", "error"), [
    ((-1, 0.0), ValueError),
    ((0, -0.001), ValueError),
    ((0, float("nan")), ValueError),
    ((0, float("inf")), ValueError),
    ((1.5, 0.0), TypeError),
    ((True, 0.0), TypeError),
    ((0, True), TypeError),
    ((0, "1"), TypeError),
    ((0, Decimal("1")), TypeError),
    (("10", 0.0), TypeError),
])
def test_cost_rejects_bad_input(args: tuple[object, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        DEFAULT.cost(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "error"), [
    ((-1, 10), ValueError),
    ((0, -1), ValueError),
    ((0, 1.5), TypeError),
    ((10, None), TypeError),
])
def test_max_cost_rejects_bad_input(args: tuple[object, object], error: type[Exception]
                                    ) -> None:
    with pytest.raises(error):
        DEFAULT.max_cost(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("args", "error"), [
    ((1.5, 10), TypeError),
    ((Decimal(10), 10), TypeError),
    ((10, -1), ValueError),
    ((True, 10), TypeError),
])
def test_rows_affordable_rejects_bad_input(args: tuple[object, object],
                                           error: type[Exception]) -> None:
    with pytest.raises(error):
        DEFAULT.rows_affordable(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "error"), [
    ((0.01, Decimal(1), Decimal(1), 1), TypeError),    # floats carry binary noise
    ((Decimal(1), Decimal("-0.01"), Decimal(1), 1), ValueError),
    ((Decimal(1), Decimal("NaN"), Decimal(1), 1), ValueError),
    ((Decimal(1), Decimal(1), Decimal("Infinity"), 1), ValueError),
    ((Decimal(1), Decimal(1), Decimal(1), -1), ValueError),
    ((Decimal(1), Decimal(1), Decimal(1), 1.0), TypeError),
    ((True, Decimal(1), Decimal(1), 1), TypeError),
    (("1", Decimal(1), Decimal(1), 1), TypeError),
])
def test_pricing_rejects_bad_rates(fields: tuple[object, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        Pricing(*fields)  # type: ignore[arg-type]


def test_int_rates_become_decimals_and_pricing_is_frozen() -> None:
    p = Pricing(2, 0, 3, 0)  # type: ignore[arg-type]
    assert isinstance(p.base, Decimal) and p.cost(5, 0.5) == 5
    with pytest.raises(AttributeError):
        p.base = Decimal(5)  # type: ignore[misc]
