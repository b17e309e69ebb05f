-- The master table. ORDER BY serves the canonical filter (country =, created_date range,
-- newest first); the _part_offset projection ordered by id makes point lookups and the dedup
-- anti-join read only the granules that hold the wanted ids (see docs/architecture.md).
CREATE TABLE IF NOT EXISTS records
(
    id UUID,
    source LowCardinality(String),
    source_file String,
    source_row UInt64,
    record_hash FixedString(16),
    ingested_at DateTime64(3, 'UTC'),
    job_id UInt64,
    user_id String,
    email String,
    name String,
    phone String,
    address String,
    city String,
    country LowCardinality(String),
    created_date Nullable(Date32),
    status LowCardinality(String),
    metadata Map(String, String),
    data_quality_score Float32,
    validation_errors Array(LowCardinality(String)),
    PROJECTION by_id (SELECT _part_offset ORDER BY id)
)
ENGINE = MergeTree
ORDER BY (country, created_date, id)
SETTINGS allow_nullable_key = 1, lightweight_mutation_projection_mode = 'rebuild',
         deduplicate_merge_projection_mode = 'rebuild';
