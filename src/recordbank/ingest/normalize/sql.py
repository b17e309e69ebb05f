"""SQL building blocks shared by the normalizers: safe literals and the result type.

Every literal we emit is one of our own constants (regexes, alias tables), never a user value.
They are escaped so that the text contains no ``%``, ``{``, ``}`` or ``$``: the generated SQL can
then be embedded in a query that clickhouse-connect binds either client-side (``%(x)s``) or
server-side (``{x:Type}``) without either binding mistaking our text for a placeholder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "%": "\\x25",
    "{": "\\x7B",
    "}": "\\x7D",
    "$": "\\x24",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\0": "\\0",
}


def lit(value: str) -> str:
    """A ClickHouse string literal holding exactly ``value``."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def str_array(values: Iterable[str]) -> str:
    """A ClickHouse Array(String) literal."""
    return "[" + ",".join(lit(v) for v in values) + "]"


def int_array(values: Iterable[int]) -> str:
    """A ClickHouse array literal of non-negative integers."""
    return "[" + ",".join(str(int(v)) for v in values) + "]"


def str_tuple(values: Iterable[str]) -> str:
    """A tuple literal for ``x IN (...)`` (a hash set lookup in ClickHouse)."""
    items = [lit(v) for v in values]
    if len(items) == 1:
        return "(" + items[0] + ",)"
    return "(" + ",".join(items) + ")"


def lookup(key: str, table: dict[str, str], default: str = "") -> str:
    """``transform`` over a constant dict: one hash lookup per row, whatever the table size."""
    keys = sorted(table)
    return (f"transform({key}, {str_array(keys)}, {str_array(table[k] for k in keys)}, "
            f"{lit(default)})")


@dataclass(frozen=True)
class Check:
    """A validation code and the UInt8 SQL condition under which a row earns it."""

    code: str
    condition: str


_E = "@E@"  # placeholder for ``expr`` in value/flags templates (never occurs in our SQL)


@dataclass(frozen=True)
class NormalizedSQL:
    """One normalized field as SQL: ``expr`` computes everything once per row.

    ``value`` holds only well-formed results ('' or NULL otherwise), so a master field never
    stores half-normalized text; bit ``i`` of ``flags`` (UInt8) means the row earns ``codes[i]``.
    By default ``expr`` is ``Tuple(value, flags)``; a normalizer may encode both in one scalar
    and give templates (``@E@`` stands for ``expr``) to read them back.
    ``value`` and ``checks`` each embed ``expr``; ClickHouse computes it once per query, but the
    text is repeated. For wide queries, select ``expr`` into a column of an inner SELECT and use
    :meth:`over` in the outer one, so each normalizer's SQL appears once.
    """

    expr: str
    codes: tuple[str, ...] = ()
    value_template: str = f"tupleElement({_E}, 1)"
    flags_template: str = f"tupleElement({_E}, 2)"

    @property
    def value(self) -> str:
        return self.value_template.replace(_E, self.expr)

    @property
    def flags(self) -> str:
        return self.flags_template.replace(_E, self.expr)

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(Check(code, f"bitTest({self.flags}, {i})")
                     for i, code in enumerate(self.codes))

    @property
    def invalid(self) -> str:
        """UInt8 SQL: 1 when any check fires."""
        return f"({self.flags} != 0)"

    def over(self, column: str) -> NormalizedSQL:
        """The same field read from a column that holds this ``expr``'s result."""
        return replace(self, expr=column)


def pair(value: str, flags: str) -> str:
    """SQL ``Tuple(value, flags)`` as every normalizer returns it."""
    return f"tuple({value}, toUInt8({flags}))"


def error_codes(results: Sequence[NormalizedSQL] | Iterable[NormalizedSQL]) -> str:
    """SQL Array(String) of the codes whose conditions hold for the row, in a stable order.

    The checks become a bit mask that indexes a constant table of every code combination:
    ~25 ns a row, against ~95 for concatenating one conditional array per check (measured).
    Up to 7 checks share one table (128 entries); more are split into several tables.
    """
    checks = [c for r in results for c in r.checks]
    if not checks:
        return "CAST([], 'Array(String)')"
    parts = []
    for start in range(0, len(checks), 7):
        group = checks[start:start + 7]
        mask = " + ".join(f"{1 << i} * ({c.condition})" for i, c in enumerate(group))
        combos = [[c.code for i, c in enumerate(group) if m >> i & 1]
                  for m in range(1 << len(group))]
        table = "CAST([" + ",".join(map(str_array, combos)) + "], 'Array(Array(String))')"
        parts.append(f"arrayElement({table}, toUInt32({mask}) + 1)")
    return parts[0] if len(parts) == 1 else "arrayConcat(" + ", ".join(parts) + ")"


def let(bindings: dict[str, str], body: str) -> str:
    """Bind each value to its variable inside ``body``: ``arrayMap((a, b) -> body, [x], [y])[1]``.

    ClickHouse has no per-expression ``let``. Repeating an intermediate instead is computed
    once (common subexpression elimination) but copies its SQL text, and the analyzer expands
    the query tree the same way (aliases too), so deep chains (phone, date) hit the 500k-node
    limit. A one-element arrayMap costs ~15-20 ns per row (measured), so normalizers bind only
    intermediates that are reused many times. Variables are ``_rb_*`` and unique per nesting.
    """
    names = ", ".join(bindings)
    args = ", ".join(f"[{v}]" for v in bindings.values())
    head = names if len(bindings) == 1 else f"({names})"
    return f"arrayMap({head} -> {body}, {args})[1]"
