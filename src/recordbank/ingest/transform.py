"""The transform: one SQL pass from the raw relation to normalized, validated, hashed rows.

Everything here is vectorized in the engine; Python only writes the SQL. The result lands in a
per-job table `clean_<job>` that the publish step deduplicates into `records`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recordbank.ingest import normalize as norm
from recordbank.ingest.loading import Relation
from recordbank.ingest.mapping import Mapping
from recordbank.schema import DEFAULT_IDENTITY, IDENTITY_REQUIRED
from recordbank.store.client import Store, sql_string

CLEAN_COLUMNS = (
    "source_row", "record_hash", "user_id", "email", "name", "phone", "address", "city",
    "country", "created_date", "status", "metadata", "data_quality_score", "validation_errors",
    "reasons", "raw",
)
EMPTY = "''"
ROW_OFFSET = "row_offset"  # the bound parameter: source_row of the relation's first row
_CLEAN_DDL = """
CREATE TABLE {table}
(
    source_row UInt64, record_hash FixedString(16), user_id String, email String, name String,
    phone String, address String, city String, country LowCardinality(String),
    created_date Nullable(Date32), status LowCardinality(String), metadata Map(String, String),
    data_quality_score Float32, validation_errors Array(LowCardinality(String)),
    reasons Array(LowCardinality(String)), raw Map(String, String),
    bucket UInt8 MATERIALIZED reinterpretAsUInt8(substring(record_hash, 1, 1))
)
ENGINE = MergeTree ORDER BY bucket
"""


@dataclass(frozen=True)
class SourceSettings:
    date_order: str = "MDY"
    region: str | None = None
    identity: tuple[str, ...] = DEFAULT_IDENTITY


def clean_table(job_id: int) -> str:
    return f"clean_{int(job_id)}"


def create_clean_table(store: Store, job_id: int) -> str:
    table = clean_table(job_id)
    store.command(f"DROP TABLE IF EXISTS {table}")
    store.command(_CLEAN_DDL.format(table=table))
    return table


def transform_params(rel: Relation, file_key: str, row_offset: int = 0) -> dict[str, Any]:
    """The bound values of transform_sql: the relation's own, the file key that names rows
    without identity, and the archive member's first source_row."""
    if row_offset < 0:
        raise ValueError("row_offset cannot be negative")
    return {**rel.params, "file_key": file_key, ROW_OFFSET: int(row_offset)}


def transform_sql(rel: Relation, mapping: Mapping, settings: SourceSettings,
                  table: str) -> str:
    """INSERT … SELECT that normalizes, validates and hashes every row of the relation.

    Three nested SELECTs keep the SQL small and each normalizer computed once per row:
    the relation's columns under short aliases; each normalizer's ``expr`` as ``n_<field>``;
    then values, codes, score, identity hash, metadata and quarantine outputs read from those.
    Values come as bound parameters (transform_params), never in the text.
    """
    aliases = [f"_rb_s{i}" for i in range(len(rel.columns))]
    spares = [f"_rb_x{i}" for i in range(len(rel.spare_exprs))]
    relation = ", ".join([f"{rel.row_expr} AS _rb_row"]
                         + [f"{e} AS {a}" for e, a in zip(rel.exprs, aliases, strict=True)]
                         + [f"{e} AS {a}" for e, a in zip(rel.spare_exprs, spares, strict=True)])
    expr_of = dict(zip(rel.columns, aliases, strict=True))

    def sources(field: str) -> list[str]:
        return [expr_of[c] for c in mapping.fields.get(field) or []]

    def one(field: str) -> str | None:
        cols = sources(field)
        return cols[0] if cols else None

    normalized: dict[str, norm.NormalizedSQL] = {}
    for field in ("user_id", "address", "city"):
        if (src := one(field)) is not None:
            normalized[field] = norm.free_text(src)
    if names := sources("name"):
        normalized["name"] = norm.name(*names)
    if (src := one("email")) is not None:
        normalized["email"] = norm.email(src)
    if (src := one("country")) is not None:
        normalized["country"] = norm.country(src)
    if (src := one("phone")) is not None:
        country_value = (normalized["country"].over("n_country").value
                         if "country" in normalized else None)
        normalized["phone"] = norm.phone(src, country_value, settings.region)
    if (src := one("created_date")) is not None:
        normalized["created_date"] = norm.parse_date(src, settings.date_order)
    if (src := one("status")) is not None:
        normalized["status"] = norm.status(src)
    level2 = ", ".join(["*"] + [f"{n.expr} AS n_{f}" for f, n in normalized.items()])
    read = {f: n.over(f"n_{f}") for f, n in normalized.items()}

    defaults = {"created_date": "CAST(NULL, 'Nullable(Date32)')", "status": "'unknown'"}
    # source_row numbers continue across the members of an archive
    sel: list[str] = [f"toUInt64(_rb_row) + {{{ROW_OFFSET}:UInt64}} AS source_row"]
    for field in ("user_id", "address", "city", "name", "email", "country", "phone",
                  "created_date", "status"):
        value = read[field].value if field in read else defaults.get(field, EMPTY)
        sel.append(f"{value} AS f_{field}")

    errors = [norm.error_codes(list(read.values()))]
    if spares:  # CSV: fields beyond the header, or rows cut short
        errors.append(f"if({spares[0]} IS NOT NULL OR {aliases[-1]} IS NULL, "
                      "['row:ragged'], CAST([], 'Array(String)'))")
    sel.append(f"arrayConcat({', '.join(errors)}) AS f_errors")

    # metadata: every unmapped column, plus overflow fields of ragged rows
    meta_pairs = [(name, expr_of[name]) for name in mapping.metadata_columns]
    meta_pairs += [(f"_extra_{i + 1}", e) for i, e in enumerate(spares)]
    sel.append(f"{_string_map(meta_pairs)} AS f_metadata")

    present = [  # invalid values are stored as '' (NULL for the date) by the normalizers
        "f_email != ''", "f_name != ''", "f_phone != ''", "f_address != ''", "f_city != ''",
        "f_country != ''", "f_created_date IS NOT NULL", "f_status != 'unknown'",
    ]
    score = " + ".join(f"toFloat32({cond})" for cond in present)
    sel.append(f"({score}) / {len(present)} AS f_score")

    required = " AND ".join(f"f_{f} = ''" for f in IDENTITY_REQUIRED)
    sel.append(f"if({required}, ['identity:missing'], CAST([], 'Array(String)')) AS f_reasons")

    ident = ["lowerUTF8(f_name)" if f == "name" else f"toString(f_{f})"
             for f in settings.identity]
    all_empty = " AND ".join(f"{e} = ''" for e in ident)
    sel.append(f"if({all_empty}, sipHash128('row', {{file_key:String}}, source_row), "
               f"sipHash128({', '.join(ident)})) AS f_hash")

    # raw: every column, empty or not, then only the overflow fields a ragged row has (as the
    # Python readers give them), so a rejected row reads the same whichever path read it
    raw = _string_map(list(zip(rel.columns, aliases, strict=True)), keep_empty=True)
    if spares:
        extra = _string_map([(f"_extra_{i + 1}", e) for i, e in enumerate(spares)])
        raw = f"mapConcat({raw}, {extra})"
    sel.append(f"if(notEmpty(f_reasons), {raw}, CAST(map(), 'Map(String, String)')) AS f_raw")

    outputs = ("source_row", "f_hash", "f_user_id", "f_email", "f_name", "f_phone",
               "f_address", "f_city", "f_country", "f_created_date", "f_status",
               "f_metadata", "f_score", "f_errors", "f_reasons", "f_raw")
    body = ",\n    ".join(sel)
    return (f"INSERT INTO {table} ({', '.join(CLEAN_COLUMNS)})\n"
            f"SELECT {', '.join(outputs)} FROM (\n  SELECT\n    {body}\n"
            f"  FROM (SELECT {level2} FROM (SELECT {relation} FROM {rel.from_sql}))\n)")


def _string_map(pairs: list[tuple[str, str]], keep_empty: bool = False) -> str:
    if not pairs:
        return "CAST(map(), 'Map(String, String)')"
    args = ", ".join(f"{sql_string(k)}, coalesce({v}, '')" for k, v in pairs)
    mapped = f"map({args})"
    return mapped if keep_empty else f"mapFilter((k, v) -> v != '', {mapped})"
