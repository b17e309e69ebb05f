"""A 1M-row file whose first half is already stored, into a table of `stored` rows."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ingest import env_for, ingest_cmd, rss_of, stage_seconds

_RECORD_COLUMNS = (
    "id, source, source_file, source_row, record_hash, ingested_at, job_id, user_id, email, "
    "name, phone, address, city, country, created_date, status, metadata, data_quality_score, "
    "validation_errors")


def fill_sql(n: int, step: int = 10_000_000) -> list[str]:
    """INSERTs of n synthetic, already-normalized rows into `records` (distinct hashes)."""
    out = []
    for lo in range(0, n, step):
        out.append(f"""
        INSERT INTO records ({_RECORD_COLUMNS})
        SELECT reinterpretAsUUID(h), 'synthetic', 'synthetic.csv', number, h, now64(3), 0,
            toString(number), concat('user', toString(number), '@fill.example'),
            concat('Person ', toString(number)),
            concat('+1415', leftPad(toString(number % 10000000), 7, '0')),
            '1 Main St', 'Springfield', ['US','GB','DE','FR','IN','CA'][number % 6 + 1],
            toDate32('2010-01-01') + (intHash32(number) % 5800),
            ['active','pending','inactive'][number % 3 + 1], map(), 0.9, []
        FROM (SELECT number, sipHash128('fill', number) AS h
              FROM numbers({lo}, {min(step, n - lo)}))""")
    return out


_FILL = """
import sys, time
sys.path.insert(0, sys.argv[2])
from bench_incremental import fill_sql
from recordbank.runtime import open_runtime
rt = open_runtime()
for sql in fill_sql(int(sys.argv[1])):
    rt.store.command(sql)
"""


def measure_incremental(work: Path, stored: int) -> dict[str, object]:
    from recordbank.sample import HEADER, generate_people, write_csv

    data = work / "data_incremental"
    shutil.rmtree(data, ignore_errors=True)
    inputs = work / "in_incremental"
    inputs.mkdir(parents=True, exist_ok=True)
    first_half = write_csv(inputs / "first_half.csv", generate_people(500_000, seed=9), HEADER)
    increment = write_csv(inputs / "increment.csv",
                          generate_people(1_000_000, seed=9, restyle=5), HEADER)
    env = env_for(data)
    rss_of(ingest_cmd(first_half), env)
    rss_of([sys.executable, "-c", _FILL, str(stored - 500_000), str(Path(__file__).parent)], env)
    wall, rss, out = rss_of(ingest_cmd(increment), env)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(inputs, ignore_errors=True)
    return {"what": f"1M-row increment, half stored, into {stored:,} rows",
            "rows": 1_000_000, "seconds": round(wall, 2), "rows_per_s": int(1_000_000 / wall),
            "peak_rss_mb": round(rss / 2**20), "stages": stage_seconds(out),
            "target_seconds": 5}
