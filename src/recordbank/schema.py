"""The master schema: one source of truth for field names, types and the identity rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Field:
    name: str
    ch_type: str  # ClickHouse type in the `records` table
    mappable: bool  # can a source column be mapped onto it?
    description: str


FIELDS: Final[tuple[Field, ...]] = (
    Field("id", "UUID", False, "Stable id derived from record_hash"),
    Field("source", "LowCardinality(String)", False, "Source name given at ingest"),
    Field("source_file", "String", False, "File name the row came from"),
    Field("source_row", "UInt64", False, "Row number in that file (0-based, data rows)"),
    Field("record_hash", "FixedString(16)", False, "128-bit hash of the identity fields"),
    Field("ingested_at", "DateTime64(3, 'UTC')", False, "When the row was published"),
    Field("job_id", "UInt64", False, "Ingest job that published the row"),
    Field("user_id", "String", True, "The source's own id for the person"),
    Field("email", "String", True, "Lowercased, syntax-checked email"),
    Field("name", "String", True, "Full name"),
    Field("phone", "String", True, "E.164 phone number"),
    Field("address", "String", True, "Street address"),
    Field("city", "String", True, "City"),
    Field("country", "LowCardinality(String)", True, "ISO-3166 alpha-2"),
    Field("created_date", "Nullable(Date32)", True, "When the person signed up"),
    Field("status", "LowCardinality(String)", True, "active | pending | inactive | unknown"),
    Field("metadata", "Map(String, String)", False, "Unmapped source columns, kept"),
    Field("data_quality_score", "Float32", False, "Share of master fields present and valid"),
    Field("validation_errors", "Array(LowCardinality(String))", False, "Stable error codes"),
)

FIELD_BY_NAME: Final = {f.name: f for f in FIELDS}
MAPPABLE_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in FIELDS if f.mappable)
STATUSES: Final[tuple[str, ...]] = ("active", "pending", "inactive", "unknown")
# Fields whose presence makes a row a person; a row with none of them is quarantined.
IDENTITY_REQUIRED: Final[tuple[str, ...]] = ("email", "phone", "name")
DEFAULT_IDENTITY: Final[tuple[str, ...]] = ("email", "phone", "name")
# Fields counted by data_quality_score.
QUALITY_FIELDS: Final[tuple[str, ...]] = (
    "email", "name", "phone", "address", "city", "country", "created_date", "status",
)
