"""The SQL plumbing: literals, result encoding, error code arrays, composing normalizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recordbank.ingest.normalize import (
    Check,
    NormalizedSQL,
    codes,
    country,
    email,
    error_codes,
    name,
    parse_date,
    phone,
    status,
)
from recordbank.ingest.normalize.sql import lit, str_array
from recordbank.store.client import Store

Evaluate = Callable[..., list[tuple[Any, ...]]]

NASTY = ["", "plain", "it's", "back\\slash", "100%", "%(x)s", "{x:String}", "$$heredoc$$",
         "tab\tnew\nline\rcr", "nul\0byte", "ünïcødé ☃ 東京", "\\x41", "'; DROP TABLE x; --"]


@pytest.mark.parametrize("value", NASTY)
def test_lit_round_trips(store: Store, value: str) -> None:
    assert store.rows(f"SELECT {lit(value)}") == [(value,)]
    assert not any(ch in lit(value) for ch in "%{}$")


def test_str_array_round_trips(store: Store) -> None:
    assert store.rows(f"SELECT {str_array(NASTY)}") == [(NASTY,)]


def _all_normalizers() -> list[NormalizedSQL]:
    c = country("v")
    return [name("v"), email("v"), c, phone("v", c.value, "US"), parse_date("v", "MDY"),
            status("v")]


def test_generated_sql_is_safe_for_both_parameter_styles(store: Store) -> None:
    """No '%', '{', '}' or '$' escapes our literals, so client-side %-binding and server-side
    {name:Type} binding both leave the generated SQL alone."""
    for n in _all_normalizers():
        for sql in (n.value, n.invalid, error_codes([n])):
            assert not any(ch in sql for ch in "%{}$"), sql[:200]
    e = email("v")
    server = store.rows(f"SELECT {e.value} FROM (SELECT {{v:String}} AS v)",
                        parameters={"v": " A%b@X.com "})
    client = store.rows(f"SELECT {e.value} FROM (SELECT %(v)s AS v)",
                        parameters={"v": " A%b@X.com "})
    assert server == client == [("a%b@x.com",)]


def test_error_codes_lists_codes_in_order(evaluate: Evaluate) -> None:
    """Ten codes (two lookup tables of combinations): every mask gives its codes in order."""
    many = NormalizedSQL("v", tuple(f"f{i}:bad" for i in range(10)),
                         value_template="@E@", flags_template="toUInt32OrZero(@E@)")
    assert [c.code for c in many.checks] == [f"f{i}:bad" for i in range(10)]
    masks = [0, 1, 5, 0b1010000001, 2**10 - 1]
    got = [r[0] for r in evaluate(error_codes([many]), v=[str(m) for m in masks])]
    assert got == [[f"f{i}:bad" for i in range(10) if m >> i & 1] for m in masks]
    assert evaluate(error_codes([]), v=["1"]) == [([],)]
    assert evaluate(error_codes([NormalizedSQL("tuple(v, 0)")]), v=["1"]) == [([],)]


def test_check_and_over() -> None:
    e = email("c3")
    assert e.checks == (Check(codes.EMAIL_INVALID, f"bitTest({e.flags}, 0)"),)
    moved = e.over("n_email")
    assert moved.value == "tupleElement(n_email, 1)" and moved.codes == e.codes
    assert moved.invalid == "(tupleElement(n_email, 2) != 0)"


def test_value_and_checks_side_by_side(evaluate: Evaluate) -> None:
    e, s = email("v"), status("v")
    got = evaluate([e.value, s.value, error_codes([e, s])], v=["x@y.io", "bad@", "Active", "?!x"])
    assert got == [("x@y.io", "unknown", [codes.STATUS_UNKNOWN]),
                   ("", "unknown", [codes.EMAIL_INVALID, codes.STATUS_UNKNOWN]),
                   ("", "active", [codes.EMAIL_INVALID]),
                   ("", "unknown", [codes.EMAIL_INVALID, codes.STATUS_UNKNOWN])]


def test_pipeline_shape_inner_expr_outer_over(store: Store) -> None:
    """The recommended shape: each normalizer's expr once in an inner SELECT, values and codes
    read from those columns outside; phone reads the row's normalized country column."""
    c = country("co")
    fields = {"email": email("em"), "country": c, "phone": phone("ph", c.over("n_country").value,
                                                                  "US"),
              "created_date": parse_date("dt", "DMY"), "status": status("st")}
    inner = ", ".join(f"{f.expr} AS n_{k}" for k, f in fields.items())
    over = {k: f.over(f"n_{k}") for k, f in fields.items()}
    outer = ", ".join(f"{f.value} AS {k}" for k, f in over.items())
    rows = [("A@B.io", "UK", "020 7946 0958", "31/01/2024", "1"),
            ("nope", "Narnia", "(415) 555-2671", "99/99/2024", "zzz"),
            (None, None, None, None, None)]
    data = ", ".join("(" + ", ".join("NULL" if v is None else lit(v) for v in r) + ")"
                     for r in rows)
    sql = (f"SELECT {outer}, {error_codes(list(over.values()))} FROM (SELECT {inner} FROM "
           f"(SELECT * FROM values('em Nullable(String), co Nullable(String), "
           f"ph Nullable(String), dt Nullable(String), st Nullable(String)', {data})))")
    import datetime as dt
    assert store.rows(sql) == [
        ("a@b.io", "GB", "+442079460958", dt.date(2024, 1, 31), "active", []),
        ("", "", "+14155552671", None, "unknown",
         [codes.EMAIL_INVALID, codes.COUNTRY_INVALID, codes.DATE_UNPARSEABLE,
          codes.STATUS_UNKNOWN]),
        ("", "", "", None, "unknown", []),
    ]


def test_normalizers_apply_to_expressions_not_only_columns(evaluate: Evaluate) -> None:
    n = name("concat(ifNull(f, ''), ' ', ifNull(l, ''))")
    e = email("concat(f, '@', l, '.com')")
    assert evaluate([n.value, e.value], f=[" Ann"], l=["Lee"]) == [("Ann Lee", "ann@lee.com")]
