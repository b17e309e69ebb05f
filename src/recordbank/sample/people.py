"""Deterministic, messy person/contact rows: the demo sample and the benchmark input.

Every value of row ``i`` is a pure function of ``(seed, i)`` (counter-based hashing, no RNG
state), so any slice of a file can be generated on its own, in any block size, and the answer
to "what was planted?" is computable without generating strings (``expected_counts``).

Planted rates (of all rows; see ``RATES`` for the full table):

- ~1% quarantine rows: first name, last name, email and phone all blank (None, "", spaces,
  tabs, NBSP) -- no identity under any normalizer.
- ~5% duplicates: row ``i`` repeats the person of an earlier *unique* row ``j`` (half within
  1,000 rows, half anywhere before). Every column is ``j``'s value re-formatted only: email
  re-cased and padded, names padded/space-doubled (never re-cased), phone separators swapped
  (same digits in the same order), country and status replaced by a synonym of the same
  canonical value, whitespace around other values. A duplicate is thus the same person under
  any sane normalization (lowercase+trim email, digits of the phone, whitespace-cleaned name).
- Unique rows differ in normalized email: valid and invalid emails embed the row index. The
  ~1% with a placeholder email ("n/a", None) carry a valid international phone instead, which
  is unique per row (a bijection of the index onto each country's number plan).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from recordbank.sample import columns
from recordbank.sample.hashing import Hash, Ints
from recordbank.sample.pools import RATES

__all__ = [
    "DATE_ORDERS", "HEADER", "JSON_KEYS", "MASTER_FIELD", "RATES", "Planted", "expected_counts",
    "generate_columns", "generate_people", "planted_identities",
]

HEADER: Final[tuple[str, ...]] = (
    "Customer Id", "First Name", "Last Name", "E-mail Address", "Phone 1", "Mailing Address",
    "City", "Mailing Country", "Subscription Date", "Status", "Company", "Notes",
)
# Keys for JSON/XML writers: dotted keys nest ({"address": {"street": ...}}).
JSON_KEYS: Final[tuple[str, ...]] = (
    "customer_id", "first_name", "last_name", "email", "phone", "address.street",
    "address.city", "address.country", "signup_date", "status", "company", "notes",
)
# Which master field each column means (None: unmapped, must land in metadata).
MASTER_FIELD: Final[dict[str, str | None]] = {
    "Customer Id": "user_id", "First Name": "name", "Last Name": "name",
    "E-mail Address": "email", "Phone 1": "phone", "Mailing Address": "address", "City": "city",
    "Mailing Country": "country", "Subscription Date": "created_date", "Status": "status",
    "Company": None, "Notes": None,
}
DATE_ORDERS: Final = ("YMD", "MDY", "DMY")
BLOCK_ROWS: Final = 65_536

Cell = str | None

# --- row kinds: which rows are unique, duplicates or quarantine -------------------------------

_NORMAL, _DUP, _QUAR = 0, 1, 2


def _base_kind(seed: int, idx: Ints) -> Ints:
    u = Hash(seed, idx).unit("kind")
    kind = np.full(len(idx), _NORMAL, dtype=np.int64)
    kind[u < RATES["quarantine"] + RATES["duplicate"]] = _DUP
    kind[u < RATES["quarantine"]] = _QUAR
    return kind


def _kinds(seed: int, idx: Ints) -> tuple[Ints, Ints]:
    """Final kind per row and, for duplicates, the index of the unique row they repeat.

    A duplicate tries 8 earlier candidates and takes the first unique one; with none (or at
    row 0) it becomes a unique row itself, so chains and repeats of quarantine rows never occur.
    """
    kind = _base_kind(seed, idx)
    target = np.full(len(idx), -1, dtype=np.int64)
    todo = np.flatnonzero((kind == _DUP) & (idx > 0))
    h = Hash(seed, idx[todo])
    near = np.minimum(idx[todo], 1000)
    for attempt in range(8):
        if not len(todo):
            break
        span = np.where(h.unit(f"dup-far{attempt}") < 0.5, near, idx[todo])
        cand = idx[todo] - 1 - (h.bits(f"dup-off{attempt}") % span.astype(np.uint64)).astype(
            np.int64)
        ok = _base_kind(seed, cand) == _NORMAL
        target[todo[ok]] = cand[ok]
        todo, near, h = todo[~ok], near[~ok], Hash(seed, idx[todo[~ok]])
    kind[(kind == _DUP) & (target < 0)] = _NORMAL
    return kind, target


@dataclass(frozen=True)
class Planted:
    """What a file of rows [start, start+rows) contains, identity-wise."""

    rows: int
    unique: int  # distinct persons (the rows a correct pipeline inserts into an empty store)
    duplicates: int  # rows repeating a person seen earlier in this file
    quarantined: int  # rows with no email, phone or name


def planted_identities(n: int, seed: int = 0, start: int = 0) -> Ints:
    """Person id per row (the index of the unique row it shows; -1 for quarantine rows)."""
    idx = np.arange(start, start + n, dtype=np.int64)
    kind, target = _kinds(seed, idx)
    ident = np.where(kind == _DUP, target, idx)
    ident[kind == _QUAR] = -1
    return ident


def expected_counts(n: int, seed: int = 0, start: int = 0, chunk: int = 1 << 20) -> Planted:
    """Exact planted counts for ``generate_people(n, seed, start)``, in bounded memory."""
    quarantined = normal = 0
    outside: set[int] = set()  # duplicates of persons that appear before `start`
    for lo in range(start, start + n, chunk):
        idx = np.arange(lo, min(lo + chunk, start + n), dtype=np.int64)
        kind, target = _kinds(seed, idx)
        quarantined += int((kind == _QUAR).sum())
        normal += int((kind == _NORMAL).sum())
        outside.update(target[(kind == _DUP) & (target < start)].tolist())
    unique = normal + len(outside)
    return Planted(n, unique, n - quarantined - unique, quarantined)



# --- generation -------------------------------------------------------------------------------


def _block(seed: int, lo: int, hi: int, date_order: str, restyle: int | None) -> list[list[Cell]]:
    idx = np.arange(lo, hi, dtype=np.int64)
    kind, target = _kinds(seed, idx)
    cols, aux = columns.build(seed, np.where(kind == _DUP, target, idx), date_order)
    if restyle is not None:
        columns.reformat(Hash(restyle ^ 0x5EED, idx), cols, aux, np.ones(len(idx), dtype=bool),
                         strength=0.3)
    columns.reformat(Hash(seed, idx), cols, aux, kind == _DUP)
    h = Hash(seed, idx)
    quar = kind == _QUAR
    for c in (columns.FIRST, columns.LAST, columns.EMAIL, columns.PHONE):
        columns.fill(h, f"quarantine{c}", cols[c], quar, columns.BLANK_OR_NONE)
    return [c.tolist() for c in cols]


def _check(n: int, start: int, date_order: str) -> None:
    if date_order not in DATE_ORDERS:
        raise ValueError(f"date_order must be one of {DATE_ORDERS}, not {date_order!r}")
    if n < 0 or start < 0:
        raise ValueError("n and start must be >= 0")
    if start + n > 100_000_000:
        raise ValueError("at most 100M rows: beyond that phone numbers stop being unique")


def generate_columns(n: int, seed: int = 0, start: int = 0, date_order: str = "YMD",
                     restyle: int | None = None, block_rows: int = BLOCK_ROWS,
                     ) -> Iterator[list[list[Cell]]]:
    """Rows [start, start+n) as column blocks (12 lists of up to ``block_rows`` values).

    ``date_order`` fixes the one date spelling of the file; ``restyle`` (any int) re-spells
    every row as another export of the same persons would (see ``columns.reformat``).
    """
    _check(n, start, date_order)
    for lo in range(start, start + n, block_rows):
        yield _block(seed, lo, min(lo + block_rows, start + n), date_order, restyle)


def generate_people(n: int, seed: int = 0, start: int = 0, date_order: str = "YMD",
                    restyle: int | None = None) -> Iterator[list[Cell]]:
    """Rows [start, start+n) of ``HEADER`` columns; row i depends only on (seed, i)."""
    for cols in generate_columns(n, seed, start, date_order, restyle):
        yield from map(list, zip(*cols, strict=True))
