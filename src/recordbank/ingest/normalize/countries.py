"""Country to ISO-3166 alpha-2 from codes (alpha-2, alpha-3, numeric) and names in any spelling.

Input is folded (lowercase, accents and every non-alphanumeric character removed) and looked up
in the alias table with one ``transform`` (a hash lookup whatever the table's ~1,800 keys).
Unknown non-empty values give '' and ``country:invalid``.
"""

from __future__ import annotations

from typing import Final

from .codes import COUNTRY_INVALID
from .country_aliases import country_aliases
from .sql import NormalizedSQL, lit, lookup
from .text import clean_text

# Every ASCII byte that is not a letter or digit: deleted by a byte translate (cheap path).
_ASCII_NON_ALNUM: Final = "".join(chr(i) for i in range(128) if not chr(i).isalnum())
_NON_ALNUM: Final = r"[^\p{L}\p{N}]+"


def fold_sql(expr: str) -> str:
    """SQL twin of :func:`country_aliases.fold` for a String expression."""
    lowered = f"lowerUTF8({expr})"
    ascii_fold = f"translate({lowered}, {lit(_ASCII_NON_ALNUM)}, '')"
    unicode_fold = f"replaceRegexpAll(removeDiacriticsUTF8({lowered}), {lit(_NON_ALNUM)}, '')"
    return f"if(length({expr}) = lengthUTF8({expr}), {ascii_fold}, {unicode_fold})"


def country(expr: str) -> NormalizedSQL:
    """Alpha-2 country (String, '' when absent or unknown) and ``country:invalid``."""
    # One scalar: the code, '' for empty input, '?' for an unknown spelling. Keys end in '.'
    # (never part of a fold) so that input made only of symbols ("???") is unknown, not empty.
    c = clean_text(expr)
    table = {"": "", **{k + ".": v for k, v in country_aliases().items()}}
    found = lookup(f"concat({fold_sql(c)}, if({c} = '', '', '.'))", table, default="?")
    return NormalizedSQL(found, (COUNTRY_INVALID,), value_template="if(@E@ = '?', '', @E@)",
                         flags_template="toUInt8(@E@ = '?')")
