"""Engine settings for ingestion's big INSERT … SELECTs (measured with bench/ and scratch runs).

Without max_insert_threads the transform runs in one thread after parallel parsing. Blocks of
256k rows sort and compress faster than the default ~1M (publish of 1M rows: 1.06 s -> 0.69 s)
and bound the memory an insert holds, at the price of more parts for background merges.
The engine maps input files into memory by default, so the process RSS grew with the file
(a 20M-row CSV: +1.7 GB of file pages); reading with pread keeps it flat.
"""

from __future__ import annotations

import os
from typing import Any, Final

BULK_INSERT: Final[dict[str, Any]] = {
    "max_insert_threads": max(2, os.cpu_count() or 2),
    "min_insert_block_size_rows": 262_144,
    "max_insert_block_size": 262_144,
    "storage_file_read_method": "pread",
}
PUBLISH_INSERT: Final[dict[str, Any]] = {**BULK_INSERT, "max_block_size": 65_536}
