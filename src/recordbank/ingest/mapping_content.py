"""What a column's values say: the share that look like emails, phones, dates, countries, statuses.

Used to confirm a header's guess, to reject a guess the content contradicts, to break ties
between candidates, and to recognise columns whose header says nothing ("col3", "contact").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from recordbank.ingest.mapping_rules import NAME_PARTS, Guess, strip_accents

_EMPTY = frozenset({"", "null", "none", "nil", "n/a", "na", "\\n", "-", "--", "?"})
_EMAIL = re.compile(r"^(mailto:)?[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]{2,}$", re.I)
_PHONE = re.compile(r"^\+?[\d\s().\-/]{6,24}(\s*(x|ext\.?|extension|#)\s*\d{1,6})?$", re.I)
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATES = (
    re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ t]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
               r"\s*(z|utc|[+-]\d{2}:?\d{2})?)?$"),
    re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}([ t]\d{1,2}:\d{2}(:\d{2})?\s*([ap]m)?)?$"),
    re.compile(rf"^\d{{1,2}}[ -]?{_MONTHS}[ ,-]*\d{{2,4}}$"),
    re.compile(rf"^([a-z]+,? )?{_MONTHS} \d{{1,2}}(st|nd|rd|th)?,? \d{{4}}$"),
    re.compile(r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"),
)
_NUMERIC = re.compile(r"^[-+]?\d+([.,]\d+)?$")
STATUS_STRONG = frozenset({
    "active", "inactive", "pending", "enabled", "disabled", "suspended", "deleted", "blocked",
    "banned", "closed", "verified", "unverified", "subscribed", "unsubscribed", "cancelled",
    "canceled", "expired", "archived", "locked", "dormant", "lapsed", "churned", "opted in",
    "opted out", "bounced", "activo", "inactivo", "actif", "inactif", "aktiv", "inaktiv",
    "trial", "confirmed", "unconfirmed",
})
STATUS_WORDS = STATUS_STRONG | {"1", "0", "true", "false", "yes", "no", "y", "n", "t", "f",
                                "on", "off", "open", "new", "current", "live", "member"}


@cache
def _country_names() -> frozenset[str]:
    """Names and codes a country column holds, normalized like sniffed values."""
    import pycountry

    names: set[str] = set()
    for c in pycountry.countries:
        for attr in ("alpha_2", "alpha_3", "name", "common_name", "official_name"):
            value = getattr(c, attr, None)
            if value:
                names.add(_norm_value(value))
    names |= {_norm_value(v) for v in (
        "USA", "U.S.", "U.S.A.", "United States of America", "America", "UK", "U.K.",
        "England", "Scotland", "Wales", "Northern Ireland", "Great Britain", "Britain",
        "Deutschland", "España", "Italia", "Brasil", "Nederland", "Holland", "The Netherlands",
        "Schweiz", "Suisse", "Österreich", "Russia", "South Korea", "Korea", "North Korea",
        "Iran", "Vietnam", "Turkey", "Türkiye", "Czech Republic", "Czechia", "Ivory Coast",
        "UAE", "Bolivia", "Venezuela", "Tanzania", "Syria", "Laos", "Moldova", "Macedonia",
        "Taiwan", "Hong Kong", "PRC", "Sverige", "Norge", "Danmark", "Suomi", "Polska",
        "Nippon", "México", "Perú", "Belgique", "België", "Éire",
    )}
    return frozenset(names)


def _norm_value(value: str) -> str:
    text = strip_accents(value).casefold().replace("\u00a0", " ")
    return " ".join(text.replace(".", "").split())


@dataclass(frozen=True)
class Profile:
    """Shares of a column's sampled non-empty values that look like each kind of value."""

    values: int  # non-empty values in the sample
    email: float = 0.0
    phone: float = 0.0
    date: float = 0.0
    country: float = 0.0
    status: float = 0.0  # any status word, 1/0 and yes/no included
    status_strong: float = 0.0  # words that can only be a status: active, pending, ...
    numeric: float = 0.0
    distinct: float = 0.0  # distinct values / non-empty values


def profile(values: Iterable[str | None], limit: int = 1000) -> Profile:
    """Sniff up to `limit` values; empty markers (NULL, n/a, -) do not count."""
    kept: list[str] = []
    for raw in values:
        if len(kept) >= limit:
            break
        if raw is None:
            continue
        text = " ".join(str(raw).replace("\u00a0", " ").split())
        if text.casefold() not in _EMPTY:
            kept.append(text)
    n = len(kept)
    if not n:
        return Profile(0)
    countries = _country_names()
    counts = dict.fromkeys(("email", "phone", "date", "country", "status", "strong", "num"), 0)
    for text in kept:
        low = text.casefold()
        is_date = any(p.match(low) for p in _DATES)
        counts["date"] += is_date
        counts["email"] += bool(_EMAIL.match(text))
        if not is_date and _PHONE.match(text):
            digits = sum(ch.isdigit() for ch in text)
            counts["phone"] += 7 <= digits <= 15
        counts["num"] += bool(_NUMERIC.match(text))
        counts["country"] += _norm_value(text) in countries
        counts["status"] += low in STATUS_WORDS
        counts["strong"] += low in STATUS_STRONG
    return Profile(
        values=n, email=counts["email"] / n, phone=counts["phone"] / n, date=counts["date"] / n,
        country=counts["country"] / n, status=counts["status"] / n,
        status_strong=counts["strong"] / n, numeric=counts["num"] / n,
        distinct=len(set(kept)) / n,
    )


def field_share(field: str, p: Profile) -> float | None:
    """How strongly the content supports a field (None: content cannot tell)."""
    share = {"email": p.email, "phone": p.phone, "created_date": p.date, "country": p.country,
             "status": p.status, "user_id": p.distinct}.get(field)
    return share if p.values else None


def contradiction(field: str, p: Profile) -> str | None:
    """Why the content rules a header's field out, or None. Needs at least 3 values."""
    if p.values < 3:
        return None

    def pct(x: float) -> str:
        return f"{x:.0%}"

    if field == "email" and p.email < 0.2:
        return f"only {pct(p.email)} of values look like emails"
    if field == "phone" and p.phone < 0.2:
        return f"only {pct(p.phone)} of values look like phone numbers"
    if field == "created_date" and p.date < 0.2 and p.numeric < 0.8:
        return f"only {pct(p.date)} of values look like dates"
    if field == "status" and p.status < 0.2 and p.distinct > 0.5:
        return f"only {pct(p.status)} of values are status words"
    if field in ("name", "city", "address", "country", *NAME_PARTS):
        for kind, share in (("numbers", p.numeric), ("emails", p.email), ("dates", p.date)):
            if share >= (0.8 if kind == "numbers" else 0.5):
                return f"{pct(share)} of values are {kind}"
        if field != "address" and p.phone >= 0.5:
            return f"{pct(p.phone)} of values are phone numbers"
    return None


def content_guess(p: Profile) -> Guess | None:
    """A field for a column whose header says nothing ("col3", "contact"), from values alone."""
    if p.values < 3:
        return None
    if p.email >= 0.6:
        return Guess("email", round(0.4 + 0.3 * p.email, 4), "content",
                     f"{p.email:.0%} of values look like emails")
    if p.phone >= 0.8:
        return Guess("phone", round(0.35 + 0.25 * p.phone, 4), "content",
                     f"{p.phone:.0%} of values look like phone numbers")
    if p.date >= 0.8:
        return Guess("created_date", round(0.3 + 0.2 * p.date, 4), "content",
                     f"{p.date:.0%} of values look like dates")
    if p.status_strong >= 0.6:
        return Guess("status", round(0.3 + 0.3 * p.status_strong, 4), "content",
                     f"{p.status_strong:.0%} of values are status words")
    if p.country >= 0.8 and p.numeric < 0.5:
        return Guess("country", round(0.3 + 0.2 * p.country, 4), "content",
                     f"{p.country:.0%} of values are country names or codes")
    return None
