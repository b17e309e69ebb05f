"""country(): ISO alpha-2 from codes, names and colloquial variants; garbage flagged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycountry
import pytest

from recordbank.ingest.normalize import codes, country
from recordbank.ingest.normalize.country_aliases import EXTRA_ALIASES, country_aliases, fold

Evaluate = Callable[..., list[tuple[Any, ...]]]

VARIANTS = [
    ("US", "US"), ("us", "US"), (" Us ", "US"), ("USA", "US"), ("U.S.A.", "US"), ("U.S.", "US"),
    ("u s a", "US"), ("United States", "US"), ("united states of america", "US"),
    ("UNITED STATES", "US"), ("America", "US"), ("840", "US"),
    ("UK", "GB"), ("U.K.", "GB"), ("GB", "GB"), ("GBR", "GB"), ("United Kingdom", "GB"),
    ("Great Britain", "GB"), ("England", "GB"), ("Scotland", "GB"), ("Wales", "GB"),
    ("Northern Ireland", "GB"),
    ("United Kingdom of Great Britain and Northern Ireland", "GB"),
    ("Deutschland", "DE"), ("Germany", "DE"), ("DEU", "DE"), ("de", "DE"),
    ("España", "ES"), ("Espana", "ES"), ("ESPAÑA", "ES"), ("Spain", "ES"),
    ("Holland", "NL"), ("The Netherlands", "NL"), ("Netherlands", "NL"), ("Nederland", "NL"),
    ("Russia", "RU"), ("Russian Federation", "RU"), ("Россия", "RU"),
    ("South Korea", "KR"), ("Korea, Republic of", "KR"), ("Republic of Korea", "KR"),
    ("Korea", "KR"), ("North Korea", "KP"), ("DPRK", "KP"),
    ("Czech Republic", "CZ"), ("Czechia", "CZ"), ("Česko", "CZ"),
    ("Türkiye", "TR"), ("Turkiye", "TR"), ("Turkey", "TR"),
    ("Ivory Coast", "CI"), ("Côte d'Ivoire", "CI"), ("Cote d'Ivoire", "CI"),
    ("COTE D IVOIRE", "CI"),
    ("Vietnam", "VN"), ("Viet Nam", "VN"), ("Iran", "IR"), ("Syria", "SY"), ("Laos", "LA"),
    ("Bolivia", "BO"), ("Venezuela", "VE"), ("Tanzania", "TZ"), ("Moldova", "MD"),
    ("Macedonia", "MK"), ("North Macedonia", "MK"), ("Vatican", "VA"), ("Holy See", "VA"),
    ("Congo", "CG"), ("Republic of the Congo", "CG"), ("DRC", "CD"), ("DR Congo", "CD"),
    ("Democratic Republic of the Congo", "CD"), ("Burma", "MM"), ("Myanmar", "MM"),
    ("Swaziland", "SZ"), ("Eswatini", "SZ"), ("Cape Verde", "CV"), ("Cabo Verde", "CV"),
    ("East Timor", "TL"), ("Taiwan", "TW"), ("British Virgin Islands", "VG"),
    ("U.S. Virgin Islands", "VI"), ("St. Lucia", "LC"), ("Saint Lucia", "LC"),
    ("St Kitts and Nevis", "KN"), ("The Bahamas", "BS"), ("Gambia", "GM"),
    ("Brasil", "BR"), ("México", "MX"), ("Mexico", "MX"), ("Italia", "IT"),
    ("Österreich", "AT"), ("Schweiz", "CH"), ("Suisse", "CH"), ("Sverige", "SE"),
    ("Éire", "IE"), ("日本", "JP"), ("中国", "CN"), ("Kosovo", "XK"), ("UAE", "AE"),
    ("250", "FR"), ("FRA", "FR"), ("36", "AU"), ("036", "AU"), ("Georgia", "GE"),
    ("\u00a0France\t", "FR"), ("FRANCE!", "FR"), ("india.", "IN"),
]


@pytest.fixture(scope="module")
def results(evaluate: Evaluate) -> dict[str, tuple[str, int]]:
    """Every case of this module in one query (a country expression takes ~0.1 s to plan)."""
    raws = [raw for raw, _ in VARIANTS] + GARBAGE
    c = country("v")
    return dict(zip(raws, evaluate([c.value, c.invalid], v=raws), strict=True))


@pytest.mark.parametrize(("raw", "expected"), VARIANTS)
def test_country_variants(results: dict[str, tuple[str, int]], raw: str, expected: str) -> None:
    assert results[raw] == (expected, 0)


GARBAGE = ["Atlantis", "Narnia", "XX", "ZZZ", "999", "12345", "United", "Republic",
           "Korea, Democratic", "Virgin Islands", "Europe", "asdf", "U", "🇺🇸", "???!", "Unknown"]


@pytest.mark.parametrize("raw", GARBAGE)
def test_unknown_countries_are_flagged(results: dict[str, tuple[str, int]], raw: str) -> None:
    assert results[raw] == ("", 1)


def test_absent_country_is_empty_without_code(evaluate: Evaluate) -> None:
    c = country("v")
    raws = [None, "", "  ", "N/A", "NULL", "-"]
    assert evaluate([c.value, c.invalid], v=raws) == [("", 0)] * len(raws)
    assert c.codes == (codes.COUNTRY_INVALID,)


def test_every_pycountry_code_and_name(evaluate: Evaluate) -> None:
    """alpha-2, alpha-3, numeric and English name of all 249 countries, as pycountry spells them
    (the SQL fold must equal the Python fold used to build the table)."""
    raws: list[str] = []
    expected: list[str] = []
    for c in pycountry.countries:
        for raw in (c.alpha_2, c.alpha_3, c.numeric, c.name, c.name.upper(), c.alpha_3.lower()):
            raws.append(raw)
            expected.append(c.alpha_2)
    got = [r[0] for r in evaluate(country("v").value, v=raws)]
    misses = [(r, e, g) for r, e, g in zip(raws, expected, got, strict=True) if e != g]
    assert misses == []


def test_every_hand_alias(evaluate: Evaluate) -> None:
    raws = [alias for aliases in EXTRA_ALIASES.values() for alias in aliases]
    expected = [code for code, aliases in EXTRA_ALIASES.items() for _ in aliases]
    got = [r[0] for r in evaluate(country("v").value, v=raws)]
    assert [(r, g) for r, g in zip(raws, got, strict=True)] == list(zip(raws, expected,
                                                                        strict=True))


def test_alias_table_is_consistent() -> None:
    table = country_aliases()
    assert len(table) > 1500
    assert all(len(code) == 2 and code.isupper() for code in table.values())
    assert all(key == fold(key) and key for key in table)
    assert "korea" in table and "virginislands" not in table  # clash dropped, hand list kept
