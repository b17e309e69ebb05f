"""Vectorized normalization and validation: Python builds ClickHouse SQL, the engine runs it.

No value is touched by Python: each normalizer takes SQL for the raw value (a
``Nullable(String)`` expression such as ``c3`` or ``concat(c1, ' ', c2)``) plus per-source
settings, and returns a :class:`NormalizedSQL`:

* ``expr``: SQL computing the whole result once per row (usually ``Tuple(value, flags)``);
* ``value``: the normalized value: ``String`` ('' when absent or invalid: a master field never
  holds half-normalized text), or ``Nullable(Date32)`` for dates;
* ``checks``: ``Check(code, condition)``: ``condition`` is UInt8 SQL, 1 when the row earns the
  stable ``code`` (see :mod:`.codes`); ``invalid`` is 1 when any check fires. Empty input never
  earns a code: absence is not an error here (the identity rule decides about it);
* ``over(column)``: the same field read from a column that holds ``expr``'s result.

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

Use it in two levels, so each normalizer's SQL (phone and country carry ~30 KB of tables)
appears once in the query text::

    c = country("c5")
    fields = {"country": c, "phone": phone("c4", c.over("n_country").value, "US"), ...}
    inner = ", ".join(f"{f.expr} AS n_{k}" for k, f in fields.items())
    read = {k: f.over(f"n_{k}") for k, f in fields.items()}
    sql = (f"SELECT {', '.join(f'{f.value} AS {k}' for k, f in read.items())}, "
           f"{error_codes(list(read.values()))} AS validation_errors "
           f"FROM (SELECT {inner}, * FROM staging)")

Planning such a query takes ~0.3-0.4 s (the expressions are large): normalize a whole staged
file (or big chunks) per statement, not small batches. Generated SQL contains no ``%``, ``{``,
``}`` or ``$`` outside escapes, so it is safe inside queries bound client- or server-side.
Lambda variables are named ``_rb_*``: do not name columns so.
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
