"""status(): the closed set active | pending | inactive | unknown from synonyms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recordbank.ingest.normalize import codes, status
from recordbank.ingest.normalize.statuses import STATUS_SYNONYMS, status_aliases
from recordbank.schema import STATUSES

Evaluate = Callable[..., list[tuple[Any, ...]]]

CASES = [
    ("1", "active"), ("0", "inactive"), ("true", "active"), ("FALSE", "inactive"),
    ("True", "active"), ("t", "active"), ("F", "inactive"), ("yes", "active"), ("No", "inactive"),
    ("Y", "active"), ("n", "inactive"), ("Active", "active"), ("ACTIVE", "active"),
    (" active\t", "active"), ("ENABLED", "active"), ("enabled", "active"),
    ("disabled", "inactive"), ("Disabled", "inactive"), ("suspended", "inactive"),
    ("cancelled", "inactive"), ("Canceled", "inactive"), ("closed", "inactive"),
    ("deleted", "inactive"), ("banned", "inactive"), ("expired", "inactive"),
    ("Opted-Out", "inactive"), ("opt out", "inactive"), ("unsubscribed", "inactive"),
    ("pending", "pending"), ("PENDING", "pending"), ("trial", "pending"),
    ("Free Trial", "pending"), ("lead", "pending"), ("unverified", "pending"),
    ("Pending Verification", "pending"), ("invited", "pending"), ("new", "pending"),
    ("verified", "active"), ("confirmed", "active"), ("subscribed", "active"),
    ("on", "active"), ("off", "inactive"), ("live", "active"), ("paid", "active"),
    ("unknown", "unknown"), ("Unknown", "unknown"), ("NA", "unknown"), ("tbd", "unknown"),
]


UNRECOGNIZED = ["maybe", "2", "activ", "!!!", "\u2713", "active!!x", "10", "vip", "???x"]


@pytest.fixture(scope="module")
def results(evaluate: Evaluate) -> dict[str, tuple[str, int]]:
    raws = [raw for raw, _ in CASES] + UNRECOGNIZED
    s = status("v")
    return dict(zip(raws, evaluate([s.value, s.invalid], v=raws), strict=True))


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_status_synonyms(results: dict[str, tuple[str, int]], raw: str, expected: str) -> None:
    assert results[raw] == (expected, 0)


@pytest.mark.parametrize("raw", UNRECOGNIZED)
def test_unrecognized_status_is_unknown_with_code(results: dict[str, tuple[str, int]],
                                                  raw: str) -> None:
    assert results[raw] == ("unknown", 1)


def test_empty_status_is_unknown_without_code(evaluate: Evaluate) -> None:
    s = status("v")
    raws = [None, "", " ", "N/A", "NULL", "-"]
    assert evaluate([s.value, s.invalid], v=raws) == [("unknown", 0)] * len(raws)
    assert s.codes == (codes.STATUS_UNKNOWN,)


def test_every_synonym_maps_into_the_closed_set(evaluate: Evaluate) -> None:
    raws = [w for words in STATUS_SYNONYMS.values() for w in words]
    expected = [st for st, words in STATUS_SYNONYMS.items() for _ in words]
    got = evaluate(status("v").value, v=raws)
    assert [g[0] for g in got] == expected
    assert set(status_aliases().values()) <= set(STATUSES)
