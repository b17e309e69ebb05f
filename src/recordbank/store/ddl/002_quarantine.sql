-- Rejected rows, kept with everything needed to fix and re-ingest them.
CREATE TABLE IF NOT EXISTS quarantine
(
    job_id UInt64,
    source LowCardinality(String),
    source_file String,
    source_row UInt64,
    reasons Array(LowCardinality(String)),
    raw Map(String, String),
    quarantined_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (job_id, source_row);
