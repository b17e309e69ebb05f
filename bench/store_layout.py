"""Why `records` is laid out as it is: `python bench/store_layout.py [--rows 50000000]`.

Fills a scratch store with synthetic normalized rows (same shape as `records`), then measures
p50/p99 of the canonical filtered query (country = US, created_date in 2024, status in
active/pending, newest first, 3 fields, limit 1000), its count, and a point lookup by id —
with the `by_id` projection, and again after dropping it (the reference: same data, same run).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
from pathlib import Path

from bench_incremental import fill_sql

CANONICAL = ("SELECT id, email, created_date FROM records WHERE country = 'US' "
             "AND created_date >= '2024-01-01' AND created_date <= '2024-12-31' "
             "AND status IN ('active', 'pending') ORDER BY created_date DESC, id DESC "
             "LIMIT 1000")
COUNT = ("SELECT count() FROM records WHERE country = 'US' AND created_date >= '2024-01-01' "
         "AND created_date <= '2024-12-31' AND status IN ('active', 'pending')")


def timed(store, sql: str, params: dict | None = None, n: int = 50) -> dict[str, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        store.rows(sql, params)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rb_store_layout"))
    args = ap.parse_args()
    from recordbank.store.client import open_store
    from recordbank.store.ddl import apply_migrations

    shutil.rmtree(args.work, ignore_errors=True)
    store = open_store(f"chdb://{args.work}")
    apply_migrations(store)
    t = time.perf_counter()
    for sql in fill_sql(args.rows):
        store.command(sql)
    fill = time.perf_counter() - t
    store.command("OPTIMIZE TABLE records FINAL")
    ids = [r[0] for r in store.rows(
        "SELECT id FROM records ORDER BY rand() LIMIT 200")]
    random.seed(1)

    def lookups() -> dict[str, float]:
        times = []
        for uid in ids:
            t = time.perf_counter()
            store.rows("SELECT * FROM records WHERE id = {u:UUID}", {"u": uid})
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        return {"p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(times[int(len(times) * 0.99) - 1], 2)}

    report = {
        "rows": args.rows, "fill_seconds": round(fill, 1),
        "canonical_query": timed(store, CANONICAL),
        "canonical_count": timed(store, COUNT),
        "point_lookup_by_id_with_projection": lookups(),
    }
    store.command("ALTER TABLE records DROP PROJECTION by_id")
    report["point_lookup_by_id_without_projection"] = lookups()
    print(json.dumps(report, indent=2))
    store.close()
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
