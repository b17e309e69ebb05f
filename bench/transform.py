"""CPU cost of the ingest transform: `python bench/transform.py [--rows N] [--runs K]`.

Runs in one process on a scratch chDB store (chDB runs in-process, so the process CPU time
includes the engine's threads). For each run it reports wall and CPU seconds of:

* the raw engine load of the same CSV (``INSERT INTO raw SELECT * FROM file(...)``): the
  reference, measured in the same run;
* the transform ``INSERT INTO clean_<job> SELECT ...`` built by ``transform_sql``;
* each normalizer alone (``SELECT count(), sum(cityHash64(expr)) FROM file(...)``), next to
  the same query hashing only its raw input columns: the difference is its own cost;
* the transform on a 1000-row file: the fixed cost of planning the (large) query.

The minimum over the runs is printed, with CPU seconds per 1M rows and ratios to the raw load.
The CSV is generated once and cached in /tmp/xform_bench.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recordbank.ingest import normalize as norm
from recordbank.ingest.loading import Relation, csv_relation
from recordbank.ingest.mapping import map_columns
from recordbank.ingest.transform import (
    SourceSettings,
    create_clean_table,
    transform_params,
    transform_sql,
)
from recordbank.sample import write_bench_files
from recordbank.store.client import Store, open_store

CACHE = Path("/tmp/xform_bench")
STORE_DIR = Path("/tmp/xform_store")


def cpu() -> float:
    """User + system CPU seconds of this process, every thread included (chDB's too)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    w, c = time.perf_counter(), cpu()
    fn()
    return time.perf_counter() - w, cpu() - c


def bench_file(rows: int) -> Path:
    path = CACHE / f"people_{rows}.csv"
    if not path.exists():
        write_bench_files(CACHE, rows, ["csv"], seed=1)
    return path


def normalizer_queries(rel: Relation, mapping: Any, settings: SourceSettings
                       ) -> dict[str, tuple[str, str]]:
    """Per normalizer: (query hashing its result, query hashing only its raw inputs).

    The second is the baseline: the CSV parser materializes only the columns a query reads,
    so the normalizer's own cost is the difference between the two.
    """
    expr_of = dict(zip(rel.columns, rel.exprs, strict=True))

    def src(field: str) -> list[str]:
        return [expr_of[c] for c in mapping.fields.get(field) or []]

    exprs: dict[str, tuple[str, list[str]]] = {}
    for field in ("user_id", "address", "city"):
        if s := src(field):
            exprs[field] = norm.free_text(s[0]).expr, s[:1]
    if s := src("name"):
        exprs["name"] = norm.name(*s).expr, s
    if s := src("email"):
        exprs["email"] = norm.email(s[0]).expr, s[:1]
    if s := src("country"):
        exprs["country"] = norm.country(s[0]).expr, s[:1]
    if s := src("phone"):
        exprs["phone"] = norm.phone(s[0], None, settings.region or "US").expr, s[:1]
    if s := src("created_date"):
        exprs["date"] = norm.parse_date(s[0], settings.date_order).expr, s[:1]
    if s := src("status"):
        exprs["status"] = norm.status(s[0]).expr, s[:1]

    def q(e: str) -> str:
        return f"SELECT count(), sum(cityHash64({e})) FROM {rel.from_sql}"

    return {k: (q(e), q(f"tuple({', '.join(cols)})")) for k, (e, cols) in exprs.items()}


def run(store: Store, path: Path, runs: int, only: set[str]) -> dict[str, dict[str, float]]:
    rel = csv_relation(path, ",", True, 0)
    mapping = map_columns(rel.columns, rel.sample(store), None)
    settings = SourceSettings(date_order="YMD")
    table = create_clean_table(store, 1)
    sql = transform_sql(rel, mapping, settings, table)
    params = transform_params(rel, "x")
    qsettings = {**rel.settings, "max_query_size": 16 << 20, "max_insert_threads": 2}
    p = {"p": str(path)}
    results: dict[str, list[tuple[float, float]]] = {}

    def raw() -> None:
        store.command("DROP TABLE IF EXISTS raw")
        store.command("CREATE TABLE raw ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM "
                      "file({p:String}, 'CSVWithNames') LIMIT 0", p)
        results.setdefault("raw load", []).append(timed(lambda: store.command(
            "INSERT INTO raw SELECT * FROM file({p:String}, 'CSVWithNames')", p)))

    def transform() -> None:
        store.command(f"TRUNCATE TABLE {table}")
        results.setdefault("transform", []).append(timed(lambda: store.command(
            sql, parameters=params, settings=qsettings)))

    queries = normalizer_queries(rel, mapping, settings) if "norm" in only else {}
    tiny = bench_file(1000)
    for _ in range(runs):
        if "transform" in only:  # the fixed cost: planning the big query (on a 1000-row file)
            store.command(f"TRUNCATE TABLE {table}")
            results.setdefault("(plan)", []).append(timed(lambda: store.command(
                sql, parameters={**params, "path": str(tiny)}, settings=qsettings)))
        if "raw" in only:
            raw()
        if "transform" in only:
            transform()
        for name, (q, base) in queries.items():
            for key, sql_ in ((name, q), (f"{name}:input", base)):
                results.setdefault(key, []).append(timed(lambda s=sql_: store.rows(
                    s, rel.params, rel.settings)))
    best = {k: {"wall": min(w for w, _ in v), "cpu": min(c for _, c in v)}
            for k, v in results.items()}
    if "transform" in only:
        best["transform"]["rows"] = float(store.scalar(f"SELECT count() FROM {table}"))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="raw,transform,norm",
                    help="comma list of raw, transform, norm")
    ap.add_argument("--sql", action="store_true", help="print the transform SQL and exit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = bench_file(args.rows)
    shutil.rmtree(STORE_DIR, ignore_errors=True)
    store = open_store(f"chdb://{STORE_DIR}")
    if args.sql:
        rel = csv_relation(path, ",", True, 0)
        mapping = map_columns(rel.columns, rel.sample(store), None)
        print(transform_sql(rel, mapping, SourceSettings(date_order="YMD"),
                            create_clean_table(store, 1)))
        return
    best = run(store, path, args.runs, set(args.only.split(",")))
    if args.json:
        print(json.dumps(best))
        return
    per_m = 1_000_000 / args.rows
    print(f"{args.rows} rows, min of {args.runs} runs; CPU = process user+sys (engine included)")
    print(f"{'step':<12} {'wall s':>8} {'cpu s':>8} {'cpu s/1M':>9} {'own cpu/1M':>10}")
    for name, r in best.items():
        if name.endswith(":input"):
            continue
        base = best.get(f"{name}:input")
        own = f"{(r['cpu'] - base['cpu']) * per_m:10.3f}" if base else ""
        print(f"{name:<12} {r['wall']:8.3f} {r['cpu']:8.3f} {r['cpu'] * per_m:9.3f} {own}")
    if "raw load" in best and "transform" in best:
        raw, tr = best["raw load"], best["transform"]
        print(f"transform / raw load: wall {tr['wall'] / raw['wall']:.2f}x, "
              f"cpu {tr['cpu'] / raw['cpu']:.2f}x; raw rate {args.rows / raw['wall']:,.0f} rows/s"
              f", transform {args.rows / tr['wall']:,.0f} rows/s "
              f"({raw['wall'] / tr['wall']:.0%} of raw)")


if __name__ == "__main__":
    main()
