"""phone(): E.164 from every punctuation style, regions, prefixes; cross-checked with
phonenumbers (libphonenumber) on generated valid numbers."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from recordbank.ingest.normalize import codes, phone

Evaluate = Callable[..., list[tuple[Any, ...]]]

# (raw, row country, default region, expected E.164 or '' for invalid)
CASES = [
    # United States / NANP: every punctuation style, with or without the leading 1
    ("(415) 555-2671", "US", None, "+14155552671"),
    ("415-555-2671", "US", None, "+14155552671"),
    ("415.555.2671", "US", None, "+14155552671"),
    ("415 555 2671", "US", None, "+14155552671"),
    ("4155552671", "US", None, "+14155552671"),
    ("1-415-555-2671", "US", None, "+14155552671"),
    ("1 (415) 555-2671", "US", None, "+14155552671"),
    ("14155552671", "US", None, "+14155552671"),
    ("+1 415 555 2671", "", None, "+14155552671"),
    ("+1-415-555-2671", "", None, "+14155552671"),
    ("+14155552671", "", None, "+14155552671"),
    ("001 415 555 2671", "", None, "+14155552671"),
    ("011 44 20 7946 0958", "US", None, "+442079460958"),  # NANP exit code
    ("(415) 555-2671", "", "US", "+14155552671"),  # default region
    ("(415) 555-2671", "CA", None, "+14155552671"),  # shared calling code
    ("\u00a0(415)\t555-2671 ", "US", None, "+14155552671"),
    # extensions are dropped
    ("415-555-2671 x123", "US", None, "+14155552671"),
    ("415-555-2671x123", "US", None, "+14155552671"),
    ("415-555-2671 ext. 12", "US", None, "+14155552671"),
    ("415-555-2671 ext 12", "US", None, "+14155552671"),
    ("415-555-2671 Extension 7", "US", None, "+14155552671"),
    ("415-555-2671 #4", "US", None, "+14155552671"),
    ("+1 415 555 2671, ext: 99", "", None, "+14155552671"),
    ("tel:+1-415-555-2671", "", None, "+14155552671"),
    ("TEL: 415 555 2671", "US", None, "+14155552671"),
    # United Kingdom
    ("020 7946 0958", "GB", None, "+442079460958"),
    ("(020) 7946 0958", "GB", None, "+442079460958"),
    ("07911 123456", "GB", None, "+447911123456"),
    ("07911-123-456", "GB", None, "+447911123456"),
    ("+44 20 7946 0958", "", None, "+442079460958"),
    ("+44 (0)20 7946 0958", "", None, "+442079460958"),
    ("+44 (0) 7911 123456", "DE", None, "+447911123456"),  # '+' wins over the row country
    ("(+44) 20 7946 0958", "", None, "+442079460958"),
    ("0044 20 7946 0958", "", None, "+442079460958"),
    ("0044 (0)20 7946 0958", "", None, "+442079460958"),
    ("447911123456", "GB", None, "+447911123456"),  # country code without '+'
    ("44 7911 123456", "GB", None, "+447911123456"),
    # Germany
    ("030 12345678", "DE", None, "+493012345678"),
    ("030/12345678", "DE", None, "+493012345678"),
    ("(030) 123 456 78", "DE", None, "+493012345678"),
    ("0151 23456789", "DE", None, "+4915123456789"),
    ("+49 30 12345678", "", None, "+493012345678"),
    ("+49 (0)30 12345678", "", None, "+493012345678"),
    ("0049 151 23456789", "", None, "+4915123456789"),
    # DE allows 4-15 digit numbers, so a repeated code without '+' stays part of the number
    # (libphonenumber reads it the same way)
    ("4915123456789", "DE", None, "+494915123456789"),
    # France
    ("01 23 45 67 89", "FR", None, "+33123456789"),
    ("06.12.34.56.78", "FR", None, "+33612345678"),
    ("06-12-34-56-78", "FR", None, "+33612345678"),
    ("+33 6 12 34 56 78", "", None, "+33612345678"),
    ("+33 (0)6 12 34 56 78", "", None, "+33612345678"),
    ("0033 1 23 45 67 89", "", None, "+33123456789"),
    # India
    ("98765 43210", "IN", None, "+919876543210"),
    ("098765 43210", "IN", None, "+919876543210"),
    ("+91 98765 43210", "", None, "+919876543210"),
    ("+91-98765-43210", "", None, "+919876543210"),
    ("011 2345 6789", "IN", None, "+911123456789"),
    ("0091 98765 43210", "", None, "+919876543210"),
    # Italy keeps its leading zero; Russia's trunk prefix is 8
    ("06 1234 5678", "IT", None, "+390612345678"),
    ("+39 06 1234 5678", "", None, "+390612345678"),
    ("8 (912) 345-67-89", "RU", None, "+79123456789"),
    ("8 800 555 35 35", "RU", None, "+78005553535"),
    ("810 44 20 7946 0958", "RU", None, "+442079460958"),
    ("+7 912 345 67 89", "", None, "+79123456789"),
    # invalid: too short, too long, letters, junk, no way to know the country
    ("555-2671", "US", None, ""),
    ("12345", "", "US", ""),
    ("415555267", "US", None, ""),
    ("415555267123", "US", None, ""),
    ("+1 415 555 26712", "", None, ""),
    ("+44 20 7946 09", "", None, ""),
    ("+123456789012345678", "", None, ""),
    ("1-800-FLOWERS", "US", None, ""),
    ("415-555-CALL", "US", None, ""),
    ("call me", "US", None, ""),
    ("phone: 415 555 2671", "US", None, ""),
    ("415 555 2671 / 415 555 9999", "US", None, ""),
    ("++1 415 555 2671", "", None, ""),
    ("415+555+2671", "US", None, ""),
    ("(415) 555-2671", "", None, ""),  # national number, no country anywhere
    ("+", "", None, ""),
    ("00", "", None, ""),
    ("+999 1234 5678", "", None, ""),  # unassigned calling code
    ("０１２３", "JP", None, ""),  # full-width digits are not read
]


@pytest.fixture(scope="module")
def case_results(evaluate: Evaluate) -> dict[tuple[str, str, str | None], tuple[str, int]]:
    """All CASES in one query per default region (a phone expression takes ~0.1 s to plan)."""
    out: dict[tuple[str, str, str | None], tuple[str, int]] = {}
    for region in {r for _, _, r, _ in CASES}:
        cases = [(raw, c) for raw, c, r, _ in CASES if r == region]
        p = phone("v", "c", default_region=region)
        got = evaluate([p.value, p.invalid], v=[raw for raw, _ in cases],
                       c=[c for _, c in cases])
        out.update({(raw, c, region): row for (raw, c), row in zip(cases, got, strict=True)})
    return out


@pytest.mark.parametrize(("raw", "country", "region", "expected"), CASES)
def test_phone(case_results: dict[tuple[str, str, str | None], tuple[str, int]], raw: str,
               country: str, region: str | None, expected: str) -> None:
    assert case_results[(raw, country, region)] == (expected, int(not expected))


def test_absent_phone_is_empty_without_code(evaluate: Evaluate) -> None:
    p = phone("v", "c", default_region="US")
    raws = [None, "", "  ", "N/A", "null", "-", "\u00a0"]
    assert evaluate([p.value, p.invalid], v=raws, c=["US"] * len(raws)) == [("", 0)] * len(raws)


def test_row_country_beats_default_region(evaluate: Evaluate) -> None:
    p = phone("v", "c", default_region="US")
    got = evaluate(p.value, v=["020 7946 0958", "020 7946 0958", "(415) 555-2671"],
                   c=["GB", "", "ZZ"])
    assert got == [("+442079460958",), ("",), ("+14155552671",)]  # ZZ: unknown -> default


def test_without_country_expression(evaluate: Evaluate) -> None:
    assert evaluate(phone("v", default_region="GB").value, v=["020 7946 0958"]) == [
        ("+442079460958",)]
    assert evaluate(phone("v").value, v=["+49 30 12345678", "030 12345678"]) == [
        ("+493012345678",), ("",)]


def test_bad_default_region_is_refused() -> None:
    with pytest.raises(ValueError):
        phone("v", default_region="XX")
    assert phone("v", default_region="gb").codes == (codes.PHONE_INVALID,)


REGIONS = ["US", "GB", "DE", "FR", "IN", "IT", "ES", "NL", "BR", "AU", "JP", "RU", "MX", "CN"]
TYPES = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
         PhoneNumberType.FIXED_LINE_OR_MOBILE]


def _valid_numbers(region: str, count: int, rng: random.Random) -> list[phonenumbers.PhoneNumber]:
    """Valid numbers of the region: example numbers with their last digits varied."""
    out: list[phonenumbers.PhoneNumber] = []
    examples = [e for t in TYPES if (e := phonenumbers.example_number_for_type(region, t))]
    attempts = 0
    while len(out) < count and attempts < count * 50:
        attempts += 1
        base = rng.choice(examples)
        nsn = str(base.national_number)
        keep = max(len(nsn) - 4, 1)
        digits = nsn[:keep] + "".join(rng.choice("0123456789") for _ in nsn[keep:])
        number = phonenumbers.parse("+" + str(base.country_code) + digits)
        if phonenumbers.is_valid_number(number) and number.country_code == base.country_code:
            out.append(number)
    return out


def _styles(number: phonenumbers.PhoneNumber, rng: random.Random) -> list[str]:
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return [national, international, e164, "00" + e164[1:],
            international.replace(" ", rng.choice([".", "-", "  ", "\u00a0"]))]


def test_agrees_with_phonenumbers_on_valid_numbers(evaluate: Evaluate) -> None:
    """Five styles of ~60 valid numbers in each of 14 regions (national, international, E.164,
    "00" prefix, odd separators): we must read the number itself, and agree with
    libphonenumber's parse wherever that reads it too (it does not take "00" as an exit
    code in NANP, Japan or Russia, where we do)."""
    rng = random.Random(20240131)
    raws: list[str] = []
    regions: list[str] = []
    truth: list[str] = []
    theirs: list[str] = []
    for region in REGIONS:
        for number in _valid_numbers(region, 60, rng):
            for raw in _styles(number, rng):
                raws.append(raw)
                regions.append(region)
                truth.append(phonenumbers.format_number(number, PhoneNumberFormat.E164))
                theirs.append(phonenumbers.format_number(phonenumbers.parse(raw, region),
                                                         PhoneNumberFormat.E164))
    assert len(raws) > 3000
    p = phone("v", "c")
    ours = [r[0] for r in evaluate(p.value, v=raws, c=regions)]
    rows = list(zip(raws, regions, truth, theirs, ours, strict=True))
    wrong = [r for r in rows if r[4] != r[2]]
    comparable = [r for r in rows if r[3] == r[2]]
    disagree = [r for r in comparable if r[4] != r[3]]
    print(f"\nphone: {len(rows)} values; ours right {1 - len(wrong) / len(rows):.2%}; "
          f"libphonenumber right {len(comparable) / len(rows):.2%}; agreement where it is "
          f"right {1 - len(disagree) / len(comparable):.2%}; first misses {wrong[:5]}")
    assert len(wrong) / len(rows) <= 0.01, wrong[:20]
    assert len(disagree) / len(comparable) <= 0.01, disagree[:20]
