"""A store's content as a few numbers two runs can compare: counts and order-independent
hashes of `records` and `quarantine`, leftover staging tables, records per job.

chDB opens one store per process, so the store of a CLI or worker run is read in a subprocess:
`digest(env)` runs this file as a script with that run's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RECORDS = ("SELECT count(), uniqExact(record_hash), groupBitXor(sipHash64(id, source_row, email,"
           " name, phone, country, created_date, status, metadata, validation_errors))"
           " FROM records")
QUARANTINE = "SELECT count(), groupBitXor(sipHash64(source_row, reasons, raw)) FROM quarantine"
LEFTOVERS = ("SELECT count() FROM system.tables WHERE database = currentDatabase()"
             " AND (name LIKE 'clean\\_%' OR name LIKE 'stg\\_%')")
PER_JOB = "SELECT job_id, count() FROM records GROUP BY job_id ORDER BY job_id"


def run_env(data: Path, database_url: str) -> dict[str, str]:
    """The environment of a recordbank subprocess on its own store and the given DB, free of
    this process's RECORDBANK_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env["RECORDBANK_DATA_DIR"] = str(data)
    env["RECORDBANK_DATABASE_URL"] = database_url
    return env


def cli(*args: str) -> list[str]:
    """The command line of `recordbank ARGS` with this interpreter."""
    return [sys.executable, "-m", "recordbank.cli", *args]


def digest(env: dict[str, str], *, per_job: bool = False) -> dict[str, Any]:
    """The digest of the store that `env` (RECORDBANK_DATA_DIR, …) points at; with `per_job`
    also [job id, records] pairs (job ids differ between databases: leave them out to compare
    two runs' content)."""
    args = [sys.executable, str(Path(__file__))] + (["--per-job"] if per_job else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                         check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(per_job: bool) -> None:
    from recordbank.runtime import open_runtime

    s = open_runtime().store
    rec = s.rows(RECORDS)[0]
    q = s.rows(QUARANTINE)[0]
    found: dict[str, Any] = {"records": rec[0], "unique": rec[1], "digest": str(rec[2]),
                             "quarantine": q[0], "qdigest": str(q[1]),
                             "leftover_tables": s.rows(LEFTOVERS)[0][0]}
    if per_job:
        found["per_job"] = [[int(j), int(c)] for j, c in s.rows(PER_JOB)]
    print(json.dumps(found))


if __name__ == "__main__":
    main("--per-job" in sys.argv[1:])
