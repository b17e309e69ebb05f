"""The country alias table: folded spelling -> ISO-3166 alpha-2, built from pycountry.

pycountry gives codes and English names; the hand list adds what people actually type
(native names, abbreviations, former and colloquial names). Keys are *folded* (see
:func:`fold`), and the SQL side folds input the same way, so "U.S.A.", "usa" and "U S A" meet.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Final

import pycountry

# Spellings pycountry lacks. They win over every derived alias.
EXTRA_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "US": ("America", "United States of America", "U.S. of A.", "Estados Unidos", "Etats-Unis",
           "Vereinigte Staaten", "Stati Uniti"),
    "GB": ("UK", "Great Britain", "Britain", "England", "Scotland", "Wales", "Northern Ireland",
           "Reino Unido", "Royaume-Uni", "Vereinigtes Königreich", "Regno Unito"),
    "DE": ("Deutschland", "Allemagne", "Alemania", "Germania", "West Germany", "Bundesrepublik"),
    "ES": ("España", "Espagne", "Spanien", "Spagna"),
    "NL": ("Holland", "Nederland", "Netherlands", "Niederlande", "Pays-Bas", "Países Bajos"),
    "FR": ("Frankreich", "Francia"),
    "IT": ("Italia", "Italien", "Italie"),
    "AT": ("Österreich", "Autriche"),
    "CH": ("Schweiz", "Suisse", "Svizzera", "Suiza"),
    "BE": ("Belgique", "België", "Belgien"),
    "PT": ("Portugal",),
    "BR": ("Brasil",),
    "MX": ("México", "Mejico"),
    "SE": ("Sverige",), "NO": ("Norge", "Noreg"), "DK": ("Danmark",), "FI": ("Suomi",),
    "PL": ("Polska", "Polen"), "GR": ("Hellas", "Ellada", "Ελλάδα"), "HU": ("Magyarország",),
    "HR": ("Hrvatska",), "IE": ("Éire", "Republic of Ireland"), "IS": ("Ísland",),
    "RU": ("Russia", "Rossiya", "Россия", "Russland"),
    "UA": ("Ukraina", "Україна", "The Ukraine"),
    "CZ": ("Czech Republic", "Česko", "Česká republika", "Czech"),
    "SK": ("Slovak Republic", "Slovensko"),
    "TR": ("Turkey", "Türkei", "Turquie", "Turquía"),
    "CI": ("Ivory Coast",),
    "KR": ("Korea", "South Korea", "Republic of Korea", "ROK", "한국", "대한민국"),
    "KP": ("North Korea", "DPRK"),
    "CN": ("PRC", "People's Republic of China", "Mainland China", "中国", "Zhongguo"),
    "JP": ("Nippon", "Nihon", "日本"),
    "TW": ("Taiwan", "臺灣", "台灣"),
    "HK": ("Hong Kong SAR",), "MO": ("Macau", "Macau SAR"),
    "VN": ("Vietnam", "Việt Nam"),
    "IN": ("Bharat", "भारत"),
    "AE": ("UAE", "Emirates", "United Arab Emirates"), "SA": ("KSA",),
    "IR": ("Iran", "Persia"), "SY": ("Syria",), "LA": ("Laos",), "MD": ("Moldova",),
    "MK": ("Macedonia", "FYROM", "Republic of Macedonia"),
    "BO": ("Bolivia",), "VE": ("Venezuela",), "TZ": ("Tanzania",),
    "VA": ("Vatican", "Vatican City", "Holy See"),
    "CD": ("DRC", "DR Congo", "Congo-Kinshasa", "Democratic Republic of the Congo",
           "Congo Kinshasa", "Zaire"),
    "CG": ("Congo-Brazzaville", "Congo Brazzaville", "Republic of the Congo"),
    "MM": ("Burma",), "SZ": ("Swaziland",), "CV": ("Cape Verde",), "TL": ("East Timor",),
    "PS": ("Palestine",), "FM": ("Micronesia",), "BN": ("Brunei",), "BA": ("Bosnia",),
    "TT": ("Trinidad",), "XK": ("Kosovo", "XK", "XKX"), "ZA": ("RSA", "Suid-Afrika"),
    "NZ": ("Aotearoa",), "EG": ("Misr",), "MA": ("Maroc",), "DZ": ("Algérie",),
}

_PRIORITY_HAND, _PRIORITY_CODE, _PRIORITY_NAME, _PRIORITY_DERIVED = 0, 1, 2, 3


def fold(value: str) -> str:
    """Lowercase, drop accents, keep only letters and digits: the SQL side's ``_fold``."""
    decomposed = unicodedata.normalize("NFD", value.lower())
    kept = "".join(ch for ch in decomposed
                   if unicodedata.category(ch)[0] in "LN" and unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", kept)  # Hangul syllables recompose, as in SQL


def _variants(name: str) -> list[str]:
    """Spellings derived from an English name: inverted "X, Y", parentheses, "St"/"The"."""
    out = [name]
    if "(" in name:
        head, _, rest = name.partition("(")
        out += [head.strip(), rest.rstrip(")").strip()]
    if ", " in name:
        head, _, tail = name.partition(", ")
        out += [f"{tail} {head}", head]
    for n in list(out):
        if n.startswith("Saint "):
            out += ["St " + n[6:], "St. " + n[6:], "Ste " + n[6:]]
        out.append("The " + n)
    return out


@cache
def country_aliases() -> dict[str, str]:
    """Folded alias -> alpha-2. Same-priority clashes ("Korea", "Congo") are dropped."""
    best: dict[str, tuple[int, str]] = {}
    clashes: set[tuple[int, str]] = set()

    def add(alias: str, code: str, priority: int) -> None:
        key = fold(alias)
        if not key:
            return
        seen = best.get(key)
        if seen is None or priority < seen[0]:
            best[key] = (priority, code)
        elif priority == seen[0] and code != seen[1]:
            clashes.add((priority, key))

    for code, aliases in EXTRA_ALIASES.items():
        for alias in aliases:
            add(alias, code, _PRIORITY_HAND)
    for c in pycountry.countries:
        code = c.alpha_2
        add(code, code, _PRIORITY_CODE)
        add(c.alpha_3, code, _PRIORITY_CODE)
        add(c.numeric, code, _PRIORITY_CODE)
        add(str(int(c.numeric)), code, _PRIORITY_CODE)
        names = {c.name, getattr(c, "official_name", c.name), getattr(c, "common_name", c.name)}
        for n in names:
            add(n, code, _PRIORITY_NAME)
        for n in names:
            for v in _variants(n)[1:]:
                add(v, code, _PRIORITY_DERIVED)
    for priority, key in clashes:
        if best.get(key, (-1, ""))[0] == priority:
            del best[key]
    return {key: code for key, (_, code) in best.items()}
