"""Synthetic messy person/contact records in every input format (demo sample, benchmarks).

``people`` generates the rows (deterministic per seed and row index, with planted duplicates
and identity-less rows whose counts ``expected_counts`` gives exactly); ``writers`` and
``sqldump`` write them in each format; ``demo`` assembles the README sample and bench inputs.
"""

from recordbank.sample.demo import FORMATS, write_bench_files, write_demo_sample
from recordbank.sample.people import (
    HEADER,
    JSON_KEYS,
    RATES,
    Planted,
    expected_counts,
    generate_columns,
    generate_people,
    planted_identities,
)
from recordbank.sample.sqldump import write_mysql_dump, write_pg_dump
from recordbank.sample.writers import (
    compress,
    write_csv,
    write_json_array,
    write_jsonl,
    write_parquet,
    write_tsv,
    write_xls,
    write_xlsx,
    write_xml,
)

__all__ = [
    "FORMATS", "HEADER", "JSON_KEYS", "RATES", "Planted", "compress", "expected_counts",
    "generate_columns", "generate_people", "planted_identities", "write_bench_files",
    "write_csv", "write_demo_sample", "write_json_array", "write_jsonl", "write_mysql_dump",
    "write_parquet", "write_pg_dump", "write_tsv", "write_xls", "write_xlsx", "write_xml",
]
