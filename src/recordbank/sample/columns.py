"""Column values for the sample generator: the messy spellings of each field.

``build(seed, src, order)`` makes the columns for the persons ``src`` (row indexes);
``reformat`` re-spells values without changing what they mean (used for planted duplicates and
for re-exports of the same persons in another file). No RNG state: every value is a pure
function of (seed, index, stream name), so blocks can be generated in any order or size.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from recordbank.sample import pools
from recordbank.sample.hashing import Hash, Ints, Objs, objs, strs
from recordbank.sample.pools import COUNTRIES, RATES

_U64 = np.uint64
_DATE0 = date(2015, 1, 1)
_NDAYS = (date(2025, 12, 31) - _DATE0).days + 1
_PADS: Final = (
    (" ", ""), ("", " "), (" ", " "), ("\t", ""), ("", "\t"), ("\xa0", ""), ("", "\xa0"),
    ("  ", "  "),
)

# --- value pools ---------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _date_pool(order: str) -> tuple[Objs, Objs]:
    """All dates of the range in the file's order: (main spelling, alternative spelling)."""
    main: list[str] = []
    alt: list[str] = []
    for k in range(_NDAYS):
        d = _DATE0 + timedelta(days=k)
        if order == "YMD":
            main.append(d.isoformat())
            alt.append(f"{d.isoformat()} {k % 24:02d}:{k * 7 % 60:02d}:{k * 13 % 60:02d}")
        elif order == "MDY":
            main.append(f"{d.month:02d}/{d.day:02d}/{d.year}")
            alt.append(f"{d.month}/{d.day}/{d.year}")
        else:
            main.append(f"{d.day:02d}.{d.month:02d}.{d.year}")
            alt.append(f"{d.day:02d}/{d.month:02d}/{d.year}")
    return objs(main), objs(alt)


def _fold(name: str) -> str:
    """ASCII email local part from a name: "Müller" -> "muller", "O'Brien" -> "obrien"."""
    plain = unicodedata.normalize("NFKD", name.lower().replace("ß", "ss"))
    return "".join(ch for ch in plain if ch.isascii() and ch not in " '")


@dataclass(frozen=True)
class _CountryPools:
    first: Objs
    last: Objs
    first_f: Objs  # ASCII-folded, for emails
    last_f: Objs
    cities: Objs
    streets: Objs
    domains: Objs
    aliases: Objs
    plan_start: Ints
    plan_base: Ints  # smallest free-digit block of each plan
    plan_lead: Objs
    plan_group: Ints  # index into `groups`: how each plan's number is split for display
    groups: tuple[tuple[int, ...], ...]
    size: int


@lru_cache(maxsize=1)
def _country_pools() -> tuple[_CountryPools, ...]:
    out = []
    for c in COUNTRIES:
        sizes = [p.size for p in c.plans]
        groups = tuple(dict.fromkeys(p.groups for p in c.plans))
        out.append(_CountryPools(
            objs(c.first_names), objs(c.last_names),
            objs([_fold(x) for x in c.first_names]), objs([_fold(x) for x in c.last_names]),
            objs(c.cities), objs(c.streets), objs(c.domains), objs(c.aliases),
            np.cumsum([0, *sizes[:-1]]).astype(np.int64),
            np.array([p.sub_min * 10 ** (p.sub_len - 1) for p in c.plans], dtype=np.int64),
            objs([p.lead for p in c.plans]),
            np.array([groups.index(p.groups) for p in c.plans], dtype=np.int64), groups,
            sum(sizes),
        ))
    return tuple(out)


# --- helpers on object arrays -----------------------------------------------------------------


def _pad(h: Hash, stream: str, col: Objs, rate: float,
         within: npt.NDArray[np.bool_] | None = None) -> None:
    """Surround a share of the non-null values with spaces, tabs or NBSP (in place)."""
    bits = h.bits(stream)
    sel = (bits >> _U64(11)) < _U64(int(rate * (1 << 53)))
    m = np.flatnonzero(sel if within is None else sel & within)
    if len(m):
        k = (bits[m] % _U64(len(_PADS))).tolist()
        col[m] = [v if v is None else _PADS[j][0] + v + _PADS[j][1]
                  for j, v in zip(k, col[m].tolist(), strict=True)]


def _map(col: Objs, mask: npt.NDArray[np.bool_], fn: Callable[[str], str]) -> None:
    """Apply ``fn`` to the non-null values under ``mask`` (in place)."""
    m = np.flatnonzero(mask)
    if len(m):
        col[m] = [v if v is None else fn(v) for v in col[m].tolist()]


def fill(h: Hash, stream: str, col: Objs, mask: npt.NDArray[np.bool_],
          choices: tuple[str | None, ...]) -> None:
    """Overwrite the values under ``mask`` with picks from ``choices``."""
    m = np.flatnonzero(mask)
    if len(m):
        pool = np.empty(len(choices), dtype=object)
        pool[:] = list(choices)
        col[m] = pool[h.below(stream, len(choices))[m]]


# --- building the columns ---------------------------------------------------------------------

# Column positions (people.HEADER order).
ID, FIRST, LAST, EMAIL, PHONE, STREET, CITY, COUNTRY, DATE, STATUS, COMPANY, NOTES = range(12)
_STATUS_NAMES: Final = tuple(pools.STATUS_WEIGHTS)
_STATUS_SYN: Final = tuple(objs(pools.STATUS_SYNONYMS[s]) for s in _STATUS_NAMES)
_STREET_SUFFIX: Final = ("St", "Street", "Ave", "Avenue", "Rd", "Road", "Lane", "Blvd", "Dr.")
BLANK_OR_NONE: Final[tuple[str | None, ...]] = (*pools.BLANKS, None)
_EXTENSIONS: Final = (" x", " ext. ", "x", " ext ", " #")
# Phone spellings: (kind, separator). National ones need the row's country to be understood.
_NANP_NATIONAL: Final = (("paren", ""), ("nat", "-"), ("nat", "."), ("nat", ""), ("one", "-"))
_NANP_INTL: Final = (("plus", " "), ("plus", "-"), ("plus", ""), ("idd", " "), ("plusparen", ""))
_TRUNK_NATIONAL: Final = (("nat", " "), ("nat", ""), ("nat", "-"))
_TRUNK_INTL: Final = (("plus", " "), ("plus", ""), ("idd", " "), ("plus0", " "))
_OTHER_NATIONAL: Final = (("nat", " "), ("nat", ""), ("nat", "."))
_OTHER_INTL: Final = (("plus", " "), ("plus", ""), ("idd", " "))
_PHONE_A: Final = 2654435761  # prime multiplier: index -> number is a bijection modulo plan size


@dataclass
class Aux:
    """What ``reformat`` needs to re-spell a value without changing its meaning."""

    country: Ints  # index into COUNTRIES
    country_alias: npt.NDArray[np.bool_]  # country cell holds one of that country's aliases
    status: Ints  # index into STATUS_WEIGHTS
    phone_plain: npt.NDArray[np.bool_]  # phone is a real number without extension


def _styles(iso: str, trunk: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    if iso in ("US", "CA"):
        return _NANP_NATIONAL, _NANP_INTL
    if iso == "DE":  # only Germans write 030/1234567
        return (*_TRUNK_NATIONAL, ("slash", "")), _TRUNK_INTL
    if trunk:
        return _TRUNK_NATIONAL, _TRUNK_INTL
    return _OTHER_NATIONAL, _OTHER_INTL


def _render(g: list[str], kind: str, sep: str, cc: str, trunk: str) -> str:
    """One phone spelling from the national number's digit groups ``g``."""
    if kind == "nat":
        return trunk + sep.join(g)
    if kind == "plus":
        return "+" + cc + sep + sep.join(g)
    if kind == "idd":
        return "00" + cc + " " + " ".join(g)
    if kind == "plus0":
        return "+" + cc + " (0)" + " ".join(g)
    if kind == "slash":
        return trunk + g[0] + "/" + "".join(g[1:])
    if kind == "paren":
        return f"({g[0]}) {g[1]}-{''.join(g[2:])}"
    if kind == "plusparen":
        return f"+{cc} ({g[0]}) {g[1]}-{''.join(g[2:])}"
    return cc + sep + sep.join(g)  # "one": 1-415-555-2671


@lru_cache(maxsize=4096)
def _template(k: int, groups: tuple[int, ...], style: int) -> Callable[..., str]:
    """``str.format`` of one phone spelling, fed with the national number's digits."""
    c = COUNTRIES[k]
    nat, intl = _styles(c.iso, c.trunk)
    edges = np.cumsum((0, *groups)).tolist()
    g = ["".join(f"{{{i}}}" for i in range(a, b)) for a, b in zip(edges, edges[1:], strict=False)]
    return _render(g, *(nat + intl)[style], c.calling_code, c.trunk).format


def _phones(h: Hash, src: Ints, ci: Ints, email_ok: npt.NDArray[np.bool_], seed: int
            ) -> tuple[Objs, npt.NDArray[np.bool_]]:
    n = len(src)
    out = np.empty(n, dtype=object)
    national = (h.unit("phone-intl") >= RATES["phone_international"]) & email_ok
    style_bits = h.bits("phone-style")
    for k, (c, p) in enumerate(zip(COUNTRIES, _country_pools(), strict=True)):
        m = np.flatnonzero(ci == k)
        if not len(m):
            continue
        v = (src[m] * _PHONE_A + (seed * 7919 + k * 104729)) % p.size
        plan = np.searchsorted(p.plan_start, v, side="right") - 1
        nsn = p.plan_lead[plan] + strs(p.plan_base[plan] + v - p.plan_start[plan])
        n_nat, n_intl = (len(x) for x in _styles(c.iso, c.trunk))
        st = style_bits[m]
        style = np.where(national[m], st % np.uint64(n_nat), n_nat + st % np.uint64(n_intl))
        key = p.plan_group[plan] * 64 + style.astype(np.int64)
        for kk in np.unique(key).tolist():
            sel = np.flatnonzero(key == kk)
            fmt = _template(k, p.groups[kk // 64], kk % 64)
            out[m[sel]] = [fmt(*x) for x in nsn[sel].tolist()]
    ext = np.flatnonzero(h.unit("phone-ext") < RATES["phone_extension"])
    if len(ext):
        kinds = h.below("phone-ext-k", len(_EXTENSIONS))[ext].tolist()
        nums = (1 + h.below("phone-ext-n", 9999)[ext]).tolist()
        out[ext] = [v + _EXTENSIONS[k] + str(e)
                    for v, k, e in zip(out[ext], kinds, nums, strict=True)]
    plain = np.ones(n, dtype=bool)
    plain[ext] = False
    u = h.unit("phone-bad")
    garbage = email_ok & (u < RATES["phone_garbage"])
    blank = email_ok & ~garbage & (u < RATES["phone_garbage"] + RATES["phone_blank"])
    fill(h, "phone-garbage", out, garbage, pools.PHONE_GARBAGE)
    fill(h, "phone-blank", out, blank, BLANK_OR_NONE)
    plain &= ~(garbage | blank)
    return out, plain


def _emails(h: Hash, src: Ints, fa: Objs, la: Objs, dom: Objs) -> tuple[Objs, Ints]:
    """Emails built from the person's index (unique), with invalid and placeholder values."""
    tok = strs(src + 1)
    ini = np.array([x[:1] for x in fa.tolist()], dtype=object)
    forms: tuple[Callable[[Ints], Objs], ...] = (
        lambda i: fa[i] + "." + la[i] + tok[i], lambda i: ini[i] + la[i] + tok[i],
        lambda i: fa[i] + "_" + la[i] + "_" + tok[i], lambda i: la[i] + "." + fa[i] + tok[i],
        lambda i: fa[i] + tok[i], lambda i: fa[i] + "." + la[i] + "." + tok[i],
    )
    local = np.empty(len(src), dtype=object)
    pat = h.below("email-pattern", len(forms))
    for k, form in enumerate(forms):
        sel = np.flatnonzero(pat == k)
        local[sel] = form(sel)
    email = local + "@" + dom
    u = h.unit("email-state")
    state = np.zeros(len(src), dtype=np.int64)  # 0 valid, 1 invalid, 2 placeholder
    state[u < RATES["email_invalid"] + RATES["email_placeholder"]] = 2
    state[u < RATES["email_invalid"]] = 1
    bad = np.flatnonzero(state == 1)
    bad_forms = (lambda i: local[i] + "@", lambda i: local[i],
                 lambda i: local[i] + "@@" + dom[i], lambda i: local[i] + "(at)" + dom[i],
                 lambda i: local[i] + "@." + dom[i])
    form_of = h.below("email-bad", len(bad_forms))[bad]
    for k, bad_form in enumerate(bad_forms):
        sel = bad[form_of == k]
        email[sel] = bad_form(sel)
    fill(h, "email-placeholder", email, state == 2, (*pools.EMAIL_PLACEHOLDERS, None))
    uc = h.unit("email-case")
    valid = state == 0
    _map(email, valid & (uc < 0.05), str.upper)
    _map(email, valid & (uc >= 0.05) & (uc < RATES["email_recased"]), str.title)
    return email, state


def build(seed: int, src: Ints, order: str) -> tuple[list[Objs], Aux]:
    """The twelve columns for the persons ``src``, as object arrays, plus their meaning."""
    n = len(src)
    h = Hash(seed, src)
    ci = h.pick("country", tuple(c.weight for c in COUNTRIES))
    first, last, fa, la, city, street, dom, alias = (np.empty(n, dtype=object) for _ in range(8))
    bits = {k: h.bits(k) for k in ("first", "last", "city", "street", "domain", "alias")}
    for k, p in enumerate(_country_pools()):
        m = np.flatnonzero(ci == k)
        if not len(m):
            continue

        def pick(stream: str, pool: Objs, m: Ints = m) -> Objs:
            return pool[(bits[stream][m] % np.uint64(len(pool))).astype(np.int64)]

        first[m], fa[m] = pick("first", p.first), pick("first", p.first_f)
        last[m], la[m] = pick("last", p.last), pick("last", p.last_f)
        city[m], dom[m], alias[m] = pick("city", p.cities), pick("domain", p.domains), pick(
            "alias", p.aliases)
        num = strs(1 + h.below("street-num", 2999)[m])
        if COUNTRIES[k].street_first:
            street[m] = pick("street", p.streets) + " " + num
        elif COUNTRIES[k].iso == "FR":
            street[m] = num + " " + pick("street", p.streets)
        else:
            suffix = objs(_STREET_SUFFIX)[h.below("street-suffix", len(_STREET_SUFFIX))[m]]
            street[m] = num + " " + pick("street", p.streets) + " " + suffix

    email, state = _emails(h, src, fa, la, dom)
    phone, phone_plain = _phones(h, src, ci, state == 0, seed)

    u = h.unit("name-case")
    _map(first, u < RATES["name_upper"], str.upper)
    _map(last, u < RATES["name_upper"], str.upper)
    u = h.unit("name-missing")
    fill(h, "name-blank", first, u < RATES["name_missing_part"] / 2, BLANK_OR_NONE)
    fill(h, "name-blank", last, (u >= RATES["name_missing_part"] / 2)
          & (u < RATES["name_missing_part"]), BLANK_OR_NONE)

    units = objs(pools.UNIT_FORMATS)[h.below("unit", len(pools.UNIT_FORMATS))]
    has_unit = np.flatnonzero(h.unit("unit?") < 0.08)
    street[has_unit] = [s + f.format(n=k) for s, f, k in zip(
        street[has_unit], units[has_unit], (1 + h.below("unit-n", 40)[has_unit]).tolist(),
        strict=True)]
    fill(h, "street-blank", street, h.unit("street-blank?") < 0.02, ("", None))
    _map(city, h.unit("city-upper") < 0.03, str.upper)
    fill(h, "city-blank", city, h.unit("city-blank?") < 0.02, ("", None))

    u = h.unit("country-text")
    garbage = u < RATES["country_garbage"]
    blank = ~garbage & (u < RATES["country_garbage"] + RATES["country_blank"])
    country = alias.copy()
    fill(h, "country-garbage", country, garbage, pools.COUNTRY_GARBAGE)
    fill(h, "country-blank", country, blank, BLANK_OR_NONE)

    main, alt = _date_pool(order)
    day = h.below("day", _NDAYS)
    dates = np.where(h.unit("date-alt") < 0.15, alt[day], main[day])
    u = h.unit("date-bad")
    fill(h, "date-garbage", dates, u < RATES["date_unparseable"], pools.DATE_GARBAGE)
    fill(h, "date-blank", dates, (u >= RATES["date_unparseable"])
          & (u < RATES["date_unparseable"] + RATES["date_blank"]), ("", None))

    status_i = h.pick("status", tuple(pools.STATUS_WEIGHTS.values()))
    status = _synonyms(h, "status-syn", status_i)

    company = objs(pools.COMPANIES)[h.below("company", len(pools.COMPANIES))]
    u = h.unit("company?")
    company[u < RATES["company_blank"]] = None
    company[(u >= RATES["company_blank"]) & (u < RATES["company_blank"] + 0.05)] = ""
    notes = objs(pools.NOTES)[h.below("notes", len(pools.NOTES))]
    u = h.unit("notes?")
    notes[u < 0.65] = ""
    notes[(u >= 0.65) & (u < 0.75)] = None

    ids = objs([f"CUST-{x:07d}" for x in (src + 1).tolist()])
    _map(ids, h.unit("id-lower") < 0.02, str.lower)
    ids[h.unit("id-none") < 0.01] = None

    cols = [ids, first, last, email, phone, street, city, country, dates, status, company, notes]
    for i, col in enumerate(cols):
        _pad(h, f"pad{i}", col, RATES["padding"])
    _map(street, h.unit("dbl-street") < 0.01, lambda v: v.replace(" ", "  "))
    return cols, Aux(ci, ~(garbage | blank), status_i, phone_plain)


def _synonyms(h: Hash, stream: str, canon: Ints) -> Objs:
    out = np.empty(len(canon), dtype=object)
    b = h.bits(stream)
    for k, syn in enumerate(_STATUS_SYN):
        m = np.flatnonzero(canon == k)
        out[m] = syn[(b[m] % np.uint64(len(syn))).astype(np.int64)]
    return out


def reformat(h: Hash, cols: list[Objs], aux: Aux, rows: npt.NDArray[np.bool_],
             strength: float = 1.0) -> None:
    """Re-spell the values of ``rows`` in place; what each value means stays the same.

    Emails are re-cased, phone separators swapped (digits untouched; never on numbers with an
    extension or on garbage), countries and statuses replaced by a synonym, names and other
    values padded with whitespace (names never re-cased). ``strength`` scales every rate.
    """
    u = h.unit("re-email") / strength
    _map(cols[EMAIL], rows & (u < 0.25), str.upper)
    _map(cols[EMAIL], rows & (u >= 0.25) & (u < 0.5), str.lower)
    _map(cols[EMAIL], rows & (u >= 0.5) & (u < 0.75), str.title)
    seps = (" ", "-", ".", "")
    table = [str.maketrans({" ": s, "-": s, ".": s}) for s in seps]
    k = h.below("re-phone-sep", len(seps))
    m = np.flatnonzero(rows & aux.phone_plain & (h.unit("re-phone") < 0.5 * strength))
    if len(m):
        cols[PHONE][m] = [v.translate(table[j]) for v, j in zip(
            cols[PHONE][m], k[m].tolist(), strict=True)]
    m = np.flatnonzero(rows & aux.country_alias & (h.unit("re-country") < 0.5 * strength))
    if len(m):
        b = h.bits("re-country-alias")[m]
        cp = _country_pools()
        cols[COUNTRY][m] = [cp[c].aliases[int(x % np.uint64(len(cp[c].aliases)))]
                            for c, x in zip(aux.country[m].tolist(), b, strict=True)]
    swap = rows & (h.unit("re-status") < 0.5 * strength)
    cols[STATUS][swap] = _synonyms(h, "re-status-syn", aux.status)[swap]
    _map(cols[CITY], rows & (h.unit("re-city") < 0.1 * strength), str.upper)
    for i in (FIRST, LAST):
        _pad(h, f"re-pad{i}", cols[i], 0.3 * strength, rows)
        dbl = rows & (h.unit(f"re-dbl{i}") < 0.1 * strength)
        _map(cols[i], dbl, lambda v: v.replace(" ", "  "))
    for i in (ID, EMAIL, PHONE, STREET, CITY, COUNTRY, STATUS, COMPANY, NOTES):
        _pad(h, f"re-pad{i}", cols[i], (0.3 if i == EMAIL else 0.2) * strength, rows)
