"""Email: cleaned, lowercased (Unicode), syntax-checked.

The check is the practical subset of RFC 5321/6531 that real mailboxes use: a dot-atom local
part (ASCII atext plus any Unicode letter or digit), '@', and a domain of two or more labels
(letters/digits, inner hyphens) whose last label (TLD) is letters or an IDNA ``xn--`` label.
Quoted local parts and IP-literal domains are rejected: in contact data they are typos or junk.
Label length (<= 63) is not checked: RE2 turns counted repeats of Unicode classes into a
25x slower automaton (measured), and overlong labels do not occur in practice.
"""

from __future__ import annotations

from typing import Final

from .codes import EMAIL_INVALID
from .sql import NormalizedSQL, let, lit, pair
from .text import clean_text


def _pattern(word: str, letter: str) -> str:
    atom = f"[{word}!#$%&'*+/=?^_`{{|}}~-]+"
    label = f"[{word}]+(?:-+[{word}]+)*"
    return rf"^{atom}(?:\.{atom})*@(?:{label}\.)+(?:{letter}{letter}+|xn--[a-z0-9-]+)$"


# The ASCII pattern is the Unicode one restricted to ASCII (kept for tests and docs). The SQL
# runs only the Unicode one: on lowercased ASCII input both accept the same addresses, and it
# costs ~40 ns a value more than the ASCII one, while choosing between them with ``if`` costs
# ~350 ns (the lazy branches copy and re-filter the column; measured).
EMAIL_PATTERN_ASCII: Final = _pattern("a-z0-9", "[a-z]")
EMAIL_PATTERN: Final = _pattern(r"\p{L}\p{N}", r"\p{L}")
_UNWRAPPED: Final = r"\1\2"
# Wrappers people paste around an address: "mailto:", "<...>". Removed before checking.
_WRAPPER: Final = r"^(?:(?i:mailto:)\s*)?(?:<\s*(.*?)\s*>|(.*))$"


def email(expr: str) -> NormalizedSQL:
    """Normalized email (String, '' when absent or invalid) and ``email:invalid``.

    Limits from RFC 5321: local part <= 64 bytes, whole address <= 254 bytes.
    """
    c = "_rb_emc"
    # ':' is never valid in an address, so only values with one (or <>) pay for the regex.
    wrapped = f"(position({c}, ':') > 0 OR startsWith({c}, '<') OR endsWith({c}, '>'))"
    e = f"lowerUTF8(if({wrapped}, replaceRegexpOne({c}, {lit(_WRAPPER)}, {lit(_UNWRAPPED)}), {c}))"
    syntax = f"match({e}, {lit(EMAIL_PATTERN)})"
    ok = f"({syntax} * (length({e}) <= 254) * (position({e}, '@') <= 65))"
    body = pair(f"if({ok} != 0, {e}, '')", f"({c} != '') * (1 - {ok})")
    return NormalizedSQL(let({c: clean_text(expr)}, body), (EMAIL_INVALID,))
