"""parse_date(): every common format, the per-source day/month order, ranges, codes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from recordbank.ingest.normalize import codes, parse_date

Evaluate = Callable[..., list[tuple[Any, ...]]]
D = dt.date
JAN31 = D(2024, 1, 31)
TODAY = dt.date.today()

# (raw, {order: expected date or "unparseable"/"out-of-range"}); "*" = every order
CASES: list[tuple[str, dict[str, D | str]]] = [
    ("2024-01-31", {"*": JAN31}),
    ("2024-1-5", {"*": D(2024, 1, 5)}),
    ("2024/01/31", {"*": JAN31}),
    ("2024.01.31", {"*": JAN31}),
    ("2024-01-31T12:34:56Z", {"*": JAN31}),
    ("2024-01-31T23:30:00-05:00", {"*": JAN31}),  # the date as written, zone ignored
    ("2024-01-31 12:34:56.789+02:00", {"*": JAN31}),
    ("2024-01-31 10:00", {"*": JAN31}),
    ("20240131", {"*": JAN31}),
    ("31.01.2024", {"DMY": JAN31, "MDY": "unparseable", "YMD": "unparseable"}),
    ("31/01/2024", {"DMY": JAN31, "MDY": "unparseable", "YMD": "unparseable"}),
    ("31-01-2024", {"DMY": JAN31, "MDY": "unparseable", "YMD": "unparseable"}),
    ("01/31/2024", {"DMY": "unparseable", "MDY": JAN31, "YMD": "unparseable"}),
    ("01/02/2024", {"DMY": D(2024, 2, 1), "MDY": D(2024, 1, 2), "YMD": "unparseable"}),
    ("1/2/2024 10:00 AM", {"DMY": D(2024, 2, 1), "MDY": D(2024, 1, 2), "YMD": "unparseable"}),
    ("31.01.24", {"DMY": JAN31, "MDY": "unparseable", "YMD": D(1931, 1, 24)}),
    ("24/01/31", {"DMY": D(1931, 1, 24), "MDY": "unparseable", "YMD": JAN31}),
    ("Jan 5, 2024", {"*": D(2024, 1, 5)}),
    ("January 5, 2024", {"*": D(2024, 1, 5)}),
    ("January 5th, 2024", {"*": D(2024, 1, 5)}),
    ("5 January 2024", {"*": D(2024, 1, 5)}),
    ("5th of January 2024", {"*": D(2024, 1, 5)}),
    ("05-JAN-2024", {"*": D(2024, 1, 5)}),
    ("5-Jan-24", {"*": D(2024, 1, 5)}),
    ("5 Sept 2023", {"*": D(2023, 9, 5)}),
    ("Dec. 25, 2023", {"*": D(2023, 12, 25)}),
    ("2024 Jan 05", {"*": D(2024, 1, 5)}),
    ("Wed, 31 Jan 2024 23:30:00 -0500", {"*": JAN31}),
    ("Wednesday, January 31, 2024", {"*": JAN31}),
    ("Mon Jan 05 10:00:00 2024", {"*": D(2024, 1, 5)}),
    ("1706659200", {"*": JAN31}),  # unix seconds
    ("1706659200000", {"*": JAN31}),  # unix milliseconds
    ("45322", {"*": JAN31}),  # Excel serial day
    ("45322.75", {"*": JAN31}),
    ("2024-02-29", {"*": D(2024, 2, 29)}),
    ("2000-02-29", {"*": D(2000, 2, 29)}),
    ("1900-01-01", {"*": D(1900, 1, 1)}),
    ("2023-02-29", {"*": "unparseable"}),
    ("1900-02-29", {"*": "unparseable"}),
    ("2024-04-31", {"*": "unparseable"}),
    ("2024-13-01", {"*": "unparseable"}),
    ("2024-00-10", {"*": "unparseable"}),
    ("2024-01-00", {"*": "unparseable"}),
    ("31/02/2024", {"*": "unparseable"}),
    ("2024", {"*": "unparseable"}),
    ("Jan 2024", {"*": "unparseable"}),
    ("12", {"*": "unparseable"}),
    ("garbage", {"*": "unparseable"}),
    ("2024-01-31x", {"*": "unparseable"}),
    ("2024--01-31", {"*": "unparseable"}),
    ("123/01/2024", {"*": "unparseable"}),
    ("0000-00-00", {"*": "unparseable"}),
    ("yesterday", {"*": "unparseable"}),
    ("1899-12-31", {"*": "out-of-range"}),
    ("1850-06-01", {"*": "out-of-range"}),
    ("0001-01-01", {"*": "out-of-range"}),
    ("2999-01-01", {"*": "out-of-range"}),
    (f"{TODAY.year + 2}-01-01", {"*": "out-of-range"}),
    (f"{TODAY.year}-{TODAY.month:02d}-{TODAY.day:02d}", {"*": TODAY}),
    (" \t2024-01-31\u00a0", {"*": JAN31}),
]
ORDERS = ("DMY", "MDY", "YMD")
FLAT = [(raw, order, exp.get(order, exp.get("*")))
        for raw, exp in CASES for order in ORDERS]


@pytest.fixture(scope="module")
def results(evaluate: Evaluate) -> dict[tuple[str, str], tuple[Any, ...]]:
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    raws = [raw for raw, _ in CASES]
    for order in ORDERS:
        p = parse_date("v", order)
        rows = evaluate([p.value, *(c.condition for c in p.checks)], v=raws)
        out.update({(raw, order): row for raw, row in zip(raws, rows, strict=True)})
    return out


@pytest.mark.parametrize(("raw", "order", "expected"), FLAT)
def test_parse_date(results: dict[tuple[str, str], tuple[Any, ...]], raw: str, order: str,
                    expected: D | str) -> None:
    if isinstance(expected, D):
        assert results[(raw, order)] == (expected, 0, 0)
    elif expected == "unparseable":
        assert results[(raw, order)] == (None, 1, 0)
    else:
        assert results[(raw, order)] == (None, 0, 1)


def test_two_digit_years_pivot_on_today(evaluate: Evaluate) -> None:
    """yy is 20yy when that is at most next year, else 19yy."""
    nxt, after = (TODAY.year + 1) % 100, (TODAY.year + 2) % 100
    p = parse_date("v", "DMY")
    got = evaluate(p.value, v=[f"01.02.{nxt:02d}", f"01.02.{after:02d}", "01.02.00", "01.02.99"])
    assert [g[0] for g in got] == [D(TODAY.year + 1, 2, 1), D(1900 + after, 2, 1),
                                   D(2000, 2, 1), D(1999, 2, 1)]


def test_absent_dates_are_null_without_code(evaluate: Evaluate) -> None:
    p = parse_date("v")
    raws = [None, "", "  ", "NULL", "N/A", "-"]
    assert evaluate([p.value, p.invalid], v=raws) == [(None, 0)] * len(raws)


def test_codes_and_other_fields() -> None:
    assert parse_date("v").codes == (codes.DATE_UNPARSEABLE, codes.DATE_OUT_OF_RANGE)
    assert parse_date("v", field="birth_date").codes == ("birth_date:unparseable",
                                                         "birth_date:out-of-range")
    with pytest.raises(ValueError):
        parse_date("v", "DDMMYY")


def test_value_type_is_nullable_date32(evaluate: Evaluate) -> None:
    p = parse_date("v")
    assert evaluate(f"toTypeName({p.value})", v=["2024-01-31"]) == [("Nullable(Date32)",)]
