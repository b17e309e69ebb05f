"""Vectorized normalization and validation: Python builds ClickHouse SQL, the engine runs it.

No value is touched by Python: each normalizer takes SQL for the raw value (a
``Nullable(String)`` expression such as ``c3`` or ``concat(c1, ' ', c2)``) plus per-source
settings, and returns a :class:`NormalizedSQL`:

* ``value``: SQL for the normalized value: ``String`` ('' when absent or invalid; a master
  field never holds half-normalized text), or ``Nullable(Date32)`` for dates;
* ``checks``: ``Check(code, condition)`` pairs; ``condition`` is a UInt8 SQL expression that is
  1 when the row earns the stable ``code`` (see :mod:`.codes`); ``invalid`` ORs them.
  Empty input never earns a code: absence is not an error here (the identity rule is).

API::

    clean_text(expr) -> str                       # trimmed, whitespace collapsed, NULL/"N/A" -> ''
    free_text(expr) -> NormalizedSQL              # address, city, user_id: clean_text, no checks
    name(*part_exprs) -> NormalizedSQL            # parts joined by one space; "name:invalid"
    email(expr) -> NormalizedSQL                  # lowerUTF8 + syntax; "email:invalid"
    phone(expr, country_expr=None, default_region=None) -> NormalizedSQL   # E.164; "phone:invalid"
    country(expr) -> NormalizedSQL                # ISO alpha-2; "country:invalid"
    parse_date(expr, order="DMY"|"MDY"|"YMD", field="created_date") -> NormalizedSQL
                                                  # "created_date:unparseable" / ":out-of-range"
    status(expr) -> NormalizedSQL                 # active|pending|inactive|unknown;
                                                  # "status:unknown"
    error_codes(results) -> str                   # SQL Array(String) of the codes a row earned

Typical use in one SELECT over a staging table::

    c = country("c5")
    p = phone("c4", c.value, default_region="US")
    sql = f"SELECT {c.value} AS country, {p.value} AS phone, {error_codes([c, p])} AS errors ..."

Identical sub-expressions are computed once per query (ClickHouse's common subexpression
elimination), so using ``value`` and the checks of one result side by side costs one pass.
Generated SQL contains no ``%``, ``{``, ``}`` or ``$`` outside escapes: it is safe inside queries
bound client- or server-side. Lambda variables are named ``_rb_*``; do not name columns so.
"""

from __future__ import annotations

from . import codes
from .countries import country
from .dates import DATE_ORDERS, DateOrder, parse_date
from .emails import email
from .phones import phone
from .sql import Check, NormalizedSQL, error_codes
from .statuses import status
from .text import clean_text, free_text, name

__all__ = [
    "DATE_ORDERS",
    "Check",
    "DateOrder",
    "NormalizedSQL",
    "clean_text",
    "codes",
    "country",
    "email",
    "error_codes",
    "free_text",
    "name",
    "parse_date",
    "phone",
    "status",
]
