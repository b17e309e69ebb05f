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
    expr_of = dict(zip(rel.columns, rel.exprs, strict=True))

    def col(field: str) -> str | None:
        sources = mapping.fields.get(field) or []
        if not sources:
            return None
        if len(sources) == 1:
            return expr_of[sources[0]]
        parts = ", ".join(f"coalesce({expr_of[s]}, '')" for s in sources)
        return f"concatWithSeparator(' ', {parts})"

    sel: list[str] = [f"toUInt64({rel.row_expr}) AS source_row"]
    errors: list[str] = []

    def text_field(field: str) -> None:
        src = col(field)
        sel.append(f"{norm.clean_text(src) if src else "''"} AS f_{field}")

    text_field("user_id")
    text_field("address")
    text_field("city")
    src = col("name")
    sel.append(f"{norm.clean_text(src) if src else "''"} AS f_name")

    src = col("email")
    if src:
        e = norm.email(src)
        sel.append(f"{e.value} AS f_email")
        errors.append(f"if({e.invalid}, 'email:invalid', '')")
    else:
        sel.append("'' AS f_email")

    src = col("country")
    if src:
        c = norm.country(src)
        sel.append(f"{c.value} AS f_country")
        errors.append(f"if({c.invalid}, 'country:invalid', '')")
    else:
        sel.append("'' AS f_country")

    src = col("phone")
    if src:
        p = norm.phone(src, "f_country", settings.region)
        sel.append(f"{p.value} AS f_phone")
        errors.append(f"if({p.invalid}, 'phone:invalid', '')")
    else:
        sel.append("'' AS f_phone")

    src = col("created_date")
    if src:
        d = norm.parse_date(src, settings.date_order)
        sel.append(f"{d.value} AS f_created_date")
        errors.append(f"if({d.invalid}, 'created_date:unparseable', '')")
    else:
        sel.append("CAST(NULL, 'Nullable(Date32)') AS f_created_date")

    src = col("status")
    if src:
        st = norm.status(src)
        sel.append(f"{st.value} AS f_status")
        errors.append(f"if({st.invalid}, 'status:unknown', '')")
    else:
        sel.append("'unknown' AS f_status")

    if rel.spare_exprs:  # CSV: fields beyond the header, or rows cut short
        errors.append(f"if({rel.spare_exprs[0]} IS NOT NULL OR {rel.exprs[-1]} IS NULL, "
                      "'row:ragged', '')")

    # metadata: every unmapped column, plus overflow fields of ragged rows
    meta_pairs = [(name, expr_of[name]) for name in mapping.metadata_columns]
    meta_pairs += [(f"_extra_{i + 1}", e) for i, e in enumerate(rel.spare_exprs)]
    sel.append(f"{_string_map(meta_pairs)} AS f_metadata")

    err_list = ", ".join(errors)
    sel.append(f"arrayFilter(x -> x != '', [{err_list}]) AS f_errors" if errors
               else "CAST([], 'Array(String)') AS f_errors")
    present = [
        "f_email != '' AND NOT has(f_errors, 'email:invalid')",
        "f_name != ''",
        "f_phone != '' AND NOT has(f_errors, 'phone:invalid')",
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

    raw_pairs = list(zip(rel.columns, rel.exprs, strict=True))
    raw_pairs += [(f"_extra_{i + 1}", e) for i, e in enumerate(rel.spare_exprs)]
    sel.append(f"if(notEmpty(f_reasons), {_string_map(raw_pairs, keep_empty=True)}, "
               "CAST(map(), 'Map(String, String)')) AS f_raw")

    outputs = ("source_row", "f_hash", "f_user_id", "f_email", "f_name", "f_phone",
               "f_address", "f_city", "f_country", "f_created_date", "f_status",
               "f_metadata", "f_score", "f_errors", "f_reasons", "f_raw")
    body = ",\n    ".join(sel)
    return (f"INSERT INTO {table} ({', '.join(CLEAN_COLUMNS)})\n"
            f"SELECT {', '.join(outputs)} FROM (\n  SELECT\n    {body}\n  FROM {rel.from_sql}\n)")


def _string_map(pairs: list[tuple[str, str]], keep_empty: bool = False) -> str:
    if not pairs:
        return "CAST(map(), 'Map(String, String)')"
    args = ", ".join(f"{sql_string(k)}, coalesce({v}, '')" for k, v in pairs)
    mapped = f"map({args})"
    return mapped if keep_empty else f"mapFilter((k, v) -> v != '', {mapped})"
