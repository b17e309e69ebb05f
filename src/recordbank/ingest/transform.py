"""The transform: one SQL pass from the raw relation to normalized, validated, hashed rows.

Everything here is vectorized in the engine; Python only writes the SQL. The result lands in a
per-job table `clean_<job>` that the publish step deduplicates into `records`.
"""

from __future__ import annotations

from dataclasses import dataclass

from recordbank.ingest import normalize as norm
from recordbank.ingest.loading import Relation
from recordbank.ingest.mapping import Mapping
from recordbank.schema import IDENTITY_REQUIRED
from recordbank.store.client import Store, sql_string

CLEAN_COLUMNS = (
    "source_row", "record_hash", "user_id", "email", "name", "phone", "address", "city",
    "country", "created_date", "status", "metadata", "data_quality_score", "validation_errors",
    "reasons", "raw",
)
EMPTY = "''"
_CLEAN_DDL = """
CREATE TABLE {table}
(
    source_row UInt64, record_hash FixedString(16), user_id String, email String, name String,
    phone String, address String, city String, country LowCardinality(String),
    created_date Nullable(Date32), status LowCardinality(String), metadata Map(String, String),
    data_quality_score Float32, validation_errors Array(LowCardinality(String)),
    reasons Array(LowCardinality(String)), raw Map(String, String)
)
ENGINE = MergeTree ORDER BY tuple()
"""


@dataclass(frozen=True)
class SourceSettings:
    date_order: str = "MDY"
    region: str | None = None
    identity: tuple[str, ...] = ("email", "phone", "name")


def clean_table(job_id: int) -> str:
    return f"clean_{int(job_id)}"


def create_clean_table(store: Store, job_id: int) -> str:
    table = clean_table(job_id)
    store.command(f"DROP TABLE IF EXISTS {table}")
    store.command(_CLEAN_DDL.format(table=table))
    return table


def transform_sql(rel: Relation, mapping: Mapping, settings: SourceSettings,
                  table: str) -> str:
    """INSERT … SELECT that normalizes, validates and hashes every row of the relation."""
    # The relation's expressions are computed once in an inner SELECT under short aliases, so
    # the normalizers (which repeat their input many times) stay small whatever the source.
    aliases = [f"_rb_s{i}" for i in range(len(rel.columns))]
    spares = [f"_rb_x{i}" for i in range(len(rel.spare_exprs))]
    inner = ", ".join([f"{rel.row_expr} AS _rb_row"]
                      + [f"{e} AS {a}" for e, a in zip(rel.exprs, aliases, strict=True)]
                      + [f"{e} AS {a}" for e, a in zip(rel.spare_exprs, spares, strict=True)])
    expr_of = dict(zip(rel.columns, aliases, strict=True))

    def col(field: str) -> str | None:
        sources = mapping.fields.get(field) or []
        if not sources:
            return None
        if len(sources) == 1:
            return expr_of[sources[0]]
        parts = ", ".join(f"coalesce({expr_of[s]}, '')" for s in sources)
        return f"concatWithSeparator(' ', {parts})"

    def cols(field: str) -> list[str]:
        return [expr_of[c] for c in mapping.fields.get(field) or []]

    sel: list[str] = ["toUInt64(_rb_row) AS source_row"]
    checked: list[norm.NormalizedSQL] = []

    def add(field: str, result: norm.NormalizedSQL | None, empty: str = EMPTY) -> None:
        sel.append(f"{result.value if result else empty} AS f_{field}")
        if result is not None:
            checked.append(result)

    for field in ("user_id", "address", "city"):
        src = col(field)
        add(field, norm.free_text(src) if src else None)
    add("name", norm.name(*cols("name")) if cols("name") else None)
    src = col("email")
    add("email", norm.email(src) if src else None)
    src = col("country")
    add("country", norm.country(src) if src else None)
    src = col("phone")
    add("phone", norm.phone(src, "f_country", settings.region) if src else None)
    src = col("created_date")
    add("created_date", norm.parse_date(src, settings.date_order) if src else None,
        empty="CAST(NULL, 'Nullable(Date32)')")
    src = col("status")
    add("status", norm.status(src) if src else None, empty="'unknown'")
    errors = [norm.error_codes(checked)]

    if spares:  # CSV: fields beyond the header, or rows cut short
        errors.append(f"if({spares[0]} IS NOT NULL OR {aliases[-1]} IS NULL, "
                      "['row:ragged'], CAST([], 'Array(String)'))")

    # metadata: every unmapped column, plus overflow fields of ragged rows
    meta_pairs = [(name, expr_of[name]) for name in mapping.metadata_columns]
    meta_pairs += [(f"_extra_{i + 1}", e) for i, e in enumerate(spares)]
    sel.append(f"{_string_map(meta_pairs)} AS f_metadata")

    sel.append(f"arrayConcat({', '.join(errors)}) AS f_errors")
    present = [  # invalid values are stored as '' by the normalizers
        "f_email != ''",
        "f_name != ''",
        "f_phone != ''",
        "f_address != ''",
        "f_city != ''",
        "f_country != ''",
        "f_created_date IS NOT NULL",
        "f_status != 'unknown'",
    ]
    score = " + ".join(f"toFloat32({cond})" for cond in present)
    sel.append(f"({score}) / {len(present)} AS f_score")

    required = " AND ".join(f"f_{f} = ''" for f in IDENTITY_REQUIRED)
    sel.append(f"if({required}, ['identity:missing'], CAST([], 'Array(String)')) AS f_reasons")

    ident = [f if f != "name" else "lowerUTF8(f_name)" for f in settings.identity]
    ident_exprs = [e if e.startswith("lowerUTF8") else f"toString(f_{e})" for e in ident]
    all_empty = " AND ".join(f"{e} = ''" for e in ident_exprs)
    sel.append(f"if({all_empty}, sipHash128('row', {{file_key:String}}, source_row), "
               f"sipHash128({', '.join(ident_exprs)})) AS f_hash")

    raw_pairs = list(zip(rel.columns, aliases, strict=True))
    raw_pairs += [(f"_extra_{i + 1}", e) for i, e in enumerate(spares)]
    sel.append(f"if(notEmpty(f_reasons), {_string_map(raw_pairs, keep_empty=True)}, "
               "CAST(map(), 'Map(String, String)')) AS f_raw")

    outputs = ("source_row", "f_hash", "f_user_id", "f_email", "f_name", "f_phone",
               "f_address", "f_city", "f_country", "f_created_date", "f_status",
               "f_metadata", "f_score", "f_errors", "f_reasons", "f_raw")
    body = ",\n    ".join(sel)
    return (f"INSERT INTO {table} ({', '.join(CLEAN_COLUMNS)})\n"
            f"SELECT {', '.join(outputs)} FROM (\n  SELECT\n    {body}\n"
            f"  FROM (SELECT {inner} FROM {rel.from_sql})\n)")


def _string_map(pairs: list[tuple[str, str]], keep_empty: bool = False) -> str:
    if not pairs:
        return "CAST(map(), 'Map(String, String)')"
    args = ", ".join(f"{sql_string(k)}, coalesce({v}, '')" for k, v in pairs)
    mapped = f"map({args})"
    return mapped if keep_empty else f"mapFilter((k, v) -> v != '', {mapped})"
