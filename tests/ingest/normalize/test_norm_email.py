"""email(): cleaning, Unicode lowercasing, syntax check, the email:invalid code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recordbank.ingest.normalize import codes, email

Evaluate = Callable[..., list[tuple[Any, ...]]]

VALID = [
    ("john.smith@example.com", "john.smith@example.com"),
    ("  John.Smith@Example.COM ", "john.smith@example.com"),
    ("\tMARY@GMAIL.COM\u00a0", "mary@gmail.com"),
    ("ÉMILE@x.fr", "émile@x.fr"),
    ("Émile.Zola@Exämple.FR", "émile.zola@exämple.fr"),
    ("ÜBER@MÜNCHEN.DE", "über@münchen.de"),
    ("用户@例子.广告", "用户@例子.广告"),
    ("user+tag@example.co.uk", "user+tag@example.co.uk"),
    ("first_last-x@sub.domain.io", "first_last-x@sub.domain.io"),
    ("a!#$%&'*+/=?^_`{|}~-b@example.org", "a!#$%&'*+/=?^_`{|}~-b@example.org"),
    ("o'brien@example.ie", "o'brien@example.ie"),
    ("x@xn--80ak6aa92e.com", "x@xn--80ak6aa92e.com"),
    ("x@a--b.co", "x@a--b.co"),
    ("1234@5.com", "1234@5.com"),
    ("mailto:Ann@Example.com", "ann@example.com"),
    ("MAILTO: ann@example.com", "ann@example.com"),
    ("<ann@example.com>", "ann@example.com"),
    ("< ann@example.com >", "ann@example.com"),
    ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
]

INVALID = [
    "plainaddress",
    "@example.com",
    "john@",
    "bad@",
    "john@example",
    "john@example.",
    "john@.com",
    "john@example..com",
    "john..doe@example.com",
    ".john@example.com",
    "john.@example.com",
    "john doe@example.com",
    "john@exa mple.com",
    "john@@example.com",
    "john@ex@ample.com",
    "john@-example.com",
    "john@example-.com",
    "john@example.c",
    "john@example.123",
    "john@[192.168.0.1]",
    '"john doe"@example.com',
    "john,doe@example.com",
    "john(comment)@example.com",
    "john@example.com.",
    "a" * 65 + "@example.com",
    "x@" + "a" * 250 + ".com",
    "mailto:",
    "<>",
    "john@example.com, mary@example.com",
    "john@example.com>",
]


@pytest.fixture(scope="module")
def results(evaluate: Evaluate) -> dict[str, tuple[str, int]]:
    raws = [raw for raw, _ in VALID] + INVALID
    e = email("v")
    return dict(zip(raws, evaluate([e.value, e.invalid], v=raws), strict=True))


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_valid_emails(results: dict[str, tuple[str, int]], raw: str, expected: str) -> None:
    assert results[raw] == (expected, 0)


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_emails_are_flagged_and_dropped(results: dict[str, tuple[str, int]],
                                                raw: str) -> None:
    assert results[raw] == ("", 1)


@pytest.mark.parametrize("raw", [None, "", "   ", "\u00a0\t", "NULL", "N/A", "-"])
def test_absent_emails_are_empty_without_code(evaluate: Evaluate, raw: str | None) -> None:
    e = email("v")
    assert evaluate([e.value, e.invalid], v=[raw]) == [("", 0)]


def test_code_and_mixed_block(evaluate: Evaluate) -> None:
    e = email("v")
    assert e.codes == (codes.EMAIL_INVALID,)
    raws = [raw for raw, _ in VALID] + INVALID + [None]
    got = evaluate([e.value, e.invalid], v=raws)
    assert got == [(x, 0) for _, x in VALID] + [("", 1)] * len(INVALID) + [("", 0)]
