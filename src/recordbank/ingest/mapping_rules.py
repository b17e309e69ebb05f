"""What a column's header says: normalization, synonyms, tolerated prefixes, near-matches.

Pure functions over strings, so every rule is testable on its own; `mapping_content.py` says
what the values say, and `mapping.py` weighs the guesses of all columns against each other.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from recordbank.schema import MAPPABLE_FIELDS

# Parts of a person's name, joined with a space into the master field `name`.
FIRST, MIDDLE, LAST = "name:first", "name:middle", "name:last"
NAME_PARTS = (FIRST, MIDDLE, LAST)
FUZZY_THRESHOLD = 0.8  # difflib ratio between compact headers; 0.8 admits one typo in 5 letters
FUZZY_WEIGHT = 0.75  # a near-match is never as sure as a synonym
SECONDARY_CAP = 0.5  # "alt email": only used when nothing better feeds the field


def _syn(weight: float, *phrases: str) -> dict[str, float]:
    return dict.fromkeys(phrases, weight)


# Phrases per field, each with the confidence an exact (normalized) match earns.
SYNONYMS: dict[str, dict[str, float]] = {
    "email": _syn(1.0, "email", "e-mail", "email address", "e-mail address", "emailaddress",
                  "contact email", "primary email", "email id", "mail address", "electronic mail",
                  "work email", "business email", "office email", "personal email",
                  "adresse email", "adresse mail", "email adresse", "mailadresse",
                  "correo electronico", "courriel", "epost")
    | _syn(0.9, "mail", "correo", "emails"),
    "phone": _syn(1.0, "phone", "phone 1", "phone1", "phone number", "mobile", "mobile phone",
                  "mobile number", "cell", "cellphone", "cell phone", "cell number", "telephone",
                  "telephone number", "tel", "tel no", "phone no", "phone num", "msisdn",
                  "contact number", "work phone", "home phone", "office phone", "business phone",
                  "primary phone", "telefono", "telefon", "numero de telephone")
    | _syn(0.9, "mobile no", "mob", "portable", "handy", "phones"),
    "name": _syn(1.0, "name", "full name", "fullname", "customer name", "contact name",
                 "person name", "complete name", "name full", "nombre completo", "nom complet")
    | _syn(0.8, "nombre", "nom", "display name"),
    FIRST: _syn(1.0, "first name", "firstname", "given name", "givenname", "forename",
                "fname", "name first", "prenom", "vorname", "first nm")
    | _syn(0.8, "first", "given"),
    MIDDLE: _syn(1.0, "middle name", "middlename", "mname", "middle initial", "name middle")
    | _syn(0.8, "middle"),
    LAST: _syn(1.0, "last name", "lastname", "surname", "family name", "familyname", "lname",
               "name last", "nachname", "apellido", "apellidos", "nom de famille", "last nm")
    | _syn(0.8, "last", "family"),
    "address": _syn(1.0, "address", "street", "street address", "address line 1",
                    "address line1", "addressline1", "addr", "address1", "addr1", "mailing street",
                    "street1", "street 1", "street line 1", "address street", "postal address",
                    "mailing address", "home address", "adresse", "direccion", "strasse")
    | _syn(0.9, "address line", "street line"),
    "city": _syn(1.0, "city", "town", "locality", "mailing city", "city name", "town city",
                 "city town", "ciudad", "ville", "stadt", "municipality")
    | _syn(0.85, "suburb"),
    "country": _syn(1.0, "country", "mailing country", "country code", "country name",
                    "country iso", "iso country", "country iso code", "pays", "pais")
    | _syn(0.9, "nation", "land"),
    "created_date": _syn(1.0, "subscription date", "create date", "created date",
                         "created at", "created on", "createdon", "creation date", "date created",
                         "signup date", "sign up date", "registration date", "registered at",
                         "registered on", "join date", "joined at", "joined on", "date joined",
                         "member since", "customer since", "subscribed at", "subscribed on",
                         "opt in date", "optin date", "date added", "added on", "account created",
                         "optin time", "opt in time")
    | _syn(0.9, "created", "signup", "sign up", "registration", "subscription", "date registered")
    | _syn(0.85, "registered", "joined"),
    "status": _syn(1.0, "status", "account status", "user status", "customer status",
                   "member status", "subscription status", "subscriber status", "active status",
                   "is active", "active flag", "statut")
    | _syn(0.9, "active", "is enabled")
    | _syn(0.85, "enabled"),
    "user_id": _syn(1.0, "id", "user id", "userid", "customer id", "customer number",
                    "customer no", "uid", "member id", "member number", "account id",
                    "contact id", "record id", "client id", "person id", "subscriber id",
                    "external id")
    | _syn(0.9, "uuid", "guid"),
}

# Leading words that do not change what a column holds ("Mailing Country", "primary_email").
PREFIXES = frozenset({
    "mailing", "billing", "shipping", "contact", "primary", "main", "home", "personal",
    "private", "customer", "client", "user", "member", "subscriber", "person", "account",
    "default", "current", "preferred", "my",
})
# Leading words that make a column a second choice ("alt_email", "Phone (other)").
SECONDARY = frozenset({
    "secondary", "alternate", "alternative", "alt", "other", "second", "additional", "backup",
    "old", "previous", "former",
})
# Words that say the column describes someone or something else than the person.
OTHER_PARTY = frozenset({
    "company", "employer", "organization", "organisation", "org", "manager", "parent",
    "spouse", "emergency", "referrer", "referral", "referred", "agent", "owner", "sales",
    "rep", "representative", "file", "product", "store", "shop", "vendor", "supplier", "bank",
    "branch", "father", "mother", "guardian", "kin", "partner", "recruiter", "sender",
})
# Whole headers that look like a field but are not ("state" is a US state, not a status).
NEVER = frozenset({
    "state", "province", "region", "county", "zip", "zipcode", "zip code", "postal code",
    "postcode", "gender", "sex", "age", "dob", "date of birth", "birth date", "birthdate",
    "birthday", "title", "job title", "notes", "note", "comment", "comments", "username",
    "user name", "login", "login name", "screen name", "nickname", "nick", "handle",
    "account name", "company name", "business name", "password", "last update", "updated at",
    "updated on", "updated", "modified", "modified at", "last modified", "last login",
    "last seen", "index", "row", "row number", "email verified", "phone verified",
    "email status", "phone type", "email type", "address type", "status reason",
})
ID_TOKENS = frozenset({"id", "ids", "uuid", "guid", "key", "pk", "fk", "no", "nr", "number",
                       "num", "code", "ref"})
PERSON_WORDS = PREFIXES | {"cust", "acct", "people", "record", "staff", "employee", "emp",
                           "patient", "student", "lead", "profile", "party", "individual",
                           "external", "subscription"}
TRAILING_NEVER = frozenset({"by", "count", "total", "amount", "verified", "type", "reason"})


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def header_tokens(header: str) -> tuple[str, ...]:
    """Words of a header: accents dropped, casefolded, split on punctuation, camelCase, digits."""
    text = strip_accents(header)
    out: list[str] = []
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        boundary = bool(prev) and (
            (prev.islower() and ch.isupper())
            or (prev.isupper() and ch.isupper() and nxt.islower())
            or (prev.isalpha() and ch.isdigit())
            or (prev.isdigit() and ch.isalpha())
        )
        out.append(" " + ch if boundary else ch)
    words = re.findall(r"[^\W_]+", "".join(out).casefold())
    return tuple(words)


def compact(header: str) -> str:
    """The header with every separator removed: 'E-mail Address' == 'EmailAddress'."""
    return "".join(header_tokens(header))


def _index() -> dict[str, tuple[str, float]]:
    index: dict[str, tuple[str, float]] = {}
    for field, phrases in SYNONYMS.items():
        for phrase, weight in phrases.items():
            key = compact(phrase)
            if key in index and index[key][0] != field:
                raise RuntimeError(f"synonym {phrase!r} claimed by {index[key][0]} and {field}")
            index[key] = (field, weight)
    return index


SYNONYM_INDEX = _index()
_SYNONYM_TOKENS = {compact(p): header_tokens(p) for ps in SYNONYMS.values() for p in ps}
_NEVER_KEYS = frozenset(compact(h) for h in NEVER)
assert set(SYNONYMS) == set(MAPPABLE_FIELDS) | set(NAME_PARTS)


@dataclass(frozen=True)
class Guess:
    """What a header alone says about a column. field None: it is known not to be a field."""

    field: str | None
    confidence: float
    method: Literal["synonym", "fuzzy", "content"]
    note: str = ""


def _variants(header: str, tokens: tuple[str, ...]) -> list[tuple[tuple[str, ...], float, str]]:
    """Readings of a header, each with a confidence penalty and the reason for it."""
    base: list[tuple[tuple[str, ...], float, str]] = [(tokens, 0.0, "")]
    stripped = list(tokens)
    while len(stripped) > 1 and stripped[0] in PREFIXES:
        stripped.pop(0)
    if len(stripped) < len(tokens):
        dropped = len(tokens) - len(stripped)
        base.append((tuple(stripped), 0.03 * dropped, f"prefix '{' '.join(tokens[:dropped])}'"))
    if "." in header:  # a flattened path: address.city, contact.email
        last = header_tokens(header.rsplit(".", 1)[1])
        if last and last != tokens:
            base.append((last, 0.05, f"last part of path '{header}'"))
    out = list(base)
    for toks, penalty, why in base:
        if len(toks) > 1 and toks[-1].isdigit():
            out.append((toks[:-1], penalty + 0.1, (why + "; " if why else "") + "numbered copy"))
        plural = _singular(toks[-1])
        if plural != toks[-1]:
            out.append((toks[:-1] + (plural,), penalty + 0.05, why))
    return out


def _parts(tokens: tuple[str, ...]) -> set[str]:
    """Compact forms of the proper whole-word prefixes and suffixes of a header."""
    return {"".join(tokens[:i]) for i in range(1, len(tokens))} | {
        "".join(tokens[i:]) for i in range(1, len(tokens))}


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def header_guess(header: str) -> Guess | None:
    """The field a header names, a Guess(None, ...) if it names something else, or None."""
    tokens = header_tokens(header)
    if not tokens:
        return None
    secondary = tokens[0] in SECONDARY and len(tokens) > 1
    if secondary:
        tokens = tokens[1:]
    cap = SECONDARY_CAP if secondary else 1.0
    extra = "secondary column" if secondary else ""
    variants = _variants(header, tokens)
    for toks, _, _ in variants:
        key = "".join(toks)
        if key in _NEVER_KEYS:
            return Guess(None, 1.0, "synonym", f"'{' '.join(toks)}' is not a master field")
    if set(tokens) & OTHER_PARTY:
        word = sorted(set(tokens) & OTHER_PARTY)[0]
        return Guess(None, 1.0, "synonym", f"about the {word}, not the person")
    best: Guess | None = None
    for toks, penalty, why in variants:
        hit = SYNONYM_INDEX.get("".join(toks))
        if hit:
            conf = round(min(cap, hit[1] - penalty), 4)
            if best is None or conf > best.confidence:
                note = "; ".join(x for x in (why, extra) if x)
                best = Guess(hit[0], conf, "synonym", note)
    if best:
        return best
    if tokens[-1] in TRAILING_NEVER:
        return Guess(None, 1.0, "synonym", f"'{tokens[-1]}' column, not a master field")
    if len(tokens) > 1 and tokens[-1] in ID_TOKENS:
        if all(t in PERSON_WORDS for t in tokens[:-1]):
            return Guess("user_id", min(cap, 0.9), "synonym", "an id of the person")
        # "phnoe number" is a typo of a synonym; "city_id" is a key of something else
        return _fuzzy(variants, cap, extra, tokens[-1]) or Guess(
            None, 1.0, "synonym", f"a {tokens[-1]} of '{' '.join(tokens[:-1])}', not of the person")
    return _fuzzy(variants, cap, extra)


def _fuzzy(variants: list[tuple[tuple[str, ...], float, str]], cap: float, extra: str,
           suffix: str = "") -> Guess | None:
    """The synonym a header is a typo of. A synonym that merely extends the header or is
    extended by it ("contact" / "contact id", "city" / "city id") is a different word, not a typo.
    """
    best: tuple[float, str, str] | None = None  # ratio, synonym key, field
    for toks, _, _ in variants:
        key = "".join(toks)
        if len(key) < 4 or all(t in PERSON_WORDS for t in toks):
            continue
        for syn, (field, weight) in SYNONYM_INDEX.items():
            if len(syn) < 4 or syn[0] != key[0] or weight < 0.9 or not syn.endswith(suffix):
                continue
            if key in _parts(_SYNONYM_TOKENS[syn]) or syn in _parts(toks):
                continue
            ratio = difflib.SequenceMatcher(None, key, syn, autojunk=False).ratio()
            if ratio >= FUZZY_THRESHOLD and (best is None or ratio > best[0]):
                best = (ratio, syn, field)
    if best is None:
        return None
    ratio, syn, field = best
    note = "; ".join(x for x in (f"near '{syn}' ({ratio:.2f})", extra) if x)
    return Guess(field, round(min(cap, FUZZY_WEIGHT * ratio), 4), "fuzzy", note)
