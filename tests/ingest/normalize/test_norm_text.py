"""clean_text and name: whitespace of every kind, placeholders, NULL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recordbank.ingest.normalize import clean_text, codes, free_text, name

Evaluate = Callable[..., list[tuple[Any, ...]]]

CLEAN_CASES = [
    (None, ""),
    ("", ""),
    ("   ", ""),
    ("plain", "plain"),
    ("  padded  ", "padded"),
    ("tab\tinside", "tab inside"),
    ("space \t\ttab run", "space tab run"),  # ASCII fast path: the translation makes a run
    ("zero\x00width\x7fascii", "zerowidthascii"),
    ("\t\tleading tabs", "leading tabs"),
    ("many     spaces", "many spaces"),
    ("line\r\nbreaks\nand\rreturns", "line breaks and returns"),
    ("vertical\x0bform\x0cfeed", "vertical form feed"),
    ("\u00a0nbsp\u00a0both\u00a0", "nbsp both"),
    ("em\u2003space en\u2002space thin\u2009space", "em space en space thin space"),
    ("ideographic\u3000space", "ideographic space"),
    ("narrow\u202fnbsp", "narrow nbsp"),
    ("line\u2028sep para\u2029sep", "line sep para sep"),
    ("next\x85line", "next line"),
    ("zero\u200bwidth", "zerowidth"),
    ("\ufeffbom at start", "bom at start"),
    ("soft\u00adhyphen", "softhyphen"),
    ("ctrl\x01\x02chars\x7f", "ctrlchars"),
    ("José Pérez", "José Pérez"),
    ("  Zoë\u00a0 \t Ålborg ", "Zoë Ålborg"),
    ("東京 都", "東京 都"),
    ("NULL", ""),
    ("null", ""),
    ("None", ""),
    ("N/A", ""),
    ("n/a", ""),
    ("#N/A", ""),
    ("\\N", ""),
    ("-", ""),
    ("--", ""),
    ("?", ""),
    ("undefined", ""),
    ("(null)", ""),
    (" NULL ", ""),
    ("NaN", ""),
    ("nan", ""),
    ("Nan", "Nan"),  # a first name, not pandas' missing value
    ("NA", "NA"),  # Namibia in a country column
    ("Nullable", "Nullable"),
    ("a-b", "a-b"),
    ("100%", "100%"),
    ("{braces} and $dollars", "{braces} and $dollars"),
    ("quote ' and \\ backslash", "quote ' and \\ backslash"),
]


@pytest.mark.parametrize(("raw", "expected"), CLEAN_CASES)
def test_clean_text(evaluate: Evaluate, raw: str | None, expected: str) -> None:
    assert evaluate(clean_text("v"), v=[raw]) == [(expected,)]


def test_clean_text_all_at_once(evaluate: Evaluate) -> None:
    """The same cases in one block: per-row paths (ASCII / Unicode) must not leak across rows."""
    raws = [raw for raw, _ in CLEAN_CASES]
    assert [r[0] for r in evaluate(clean_text("v"), v=raws)] == [e for _, e in CLEAN_CASES]


def test_free_text_never_flags(evaluate: Evaluate) -> None:
    t = free_text("v")
    assert evaluate([t.value, t.invalid], v=["  12 Main\tSt ", None, "N/A"]) == [
        ("12 Main St", 0), ("", 0), ("", 0)]


NAME_CASES = [
    ("John", "Smith", "John Smith", 0),
    (" John ", "  Smith\t", "John Smith", 0),
    ("John", None, "John", 0),
    (None, "Smith", "Smith", 0),
    ("", "Smith", "Smith", 0),
    (None, None, "", 0),
    ("", "", "", 0),
    ("N/A", "Smith", "Smith", 0),
    ("John", "NULL", "John", 0),
    ("Mary Ann", "van der Berg", "Mary Ann van der Berg", 0),
    ("JOSÉ", "garcía", "JOSÉ garcía", 0),  # case kept as written
    ("O'Brien", "D'Arcy-Smith", "O'Brien D'Arcy-Smith", 0),
    ("李", "小龙", "李 小龙", 0),  # letters without case
    ("Nan", "Goldin", "Nan Goldin", 0),
    ("12345", None, "", 1),
    ("123", "456", "", 1),
    ("--/--", "!!", "", 1),
    ("\u00a0", "\u200b", "", 0),
]


@pytest.mark.parametrize(("first", "last", "expected", "invalid"), NAME_CASES)
def test_name(evaluate: Evaluate, first: str | None, last: str | None, expected: str,
              invalid: int) -> None:
    n = name("f", "l")
    assert evaluate([n.value, n.invalid], f=[first], l=[last]) == [(expected, invalid)]
    assert n.codes == (codes.NAME_INVALID,)


def test_name_single_and_three_parts(evaluate: Evaluate) -> None:
    one = name("f")
    three = name("f", "m", "l")
    assert evaluate(one.value, f=[" Cher "]) == [("Cher",)]
    assert evaluate(three.value, f=["John"], m=[None], l=["Smith"]) == [("John Smith",)]
    assert evaluate(three.value, f=["John"], m=["F."], l=["Kennedy"]) == [("John F. Kennedy",)]
    with pytest.raises(ValueError):
        name()
