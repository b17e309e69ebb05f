"""API latency, throughput and export speed: `python bench/api.py [--big] [--reuse]`.

The server (`recordbank serve`, one process owning the embedded store) and a bare FastAPI app
(bench/bare_app.py, the stack's own overhead) run in their own processes; the load generator
(bench/loadgen.py, raw keep-alive HTTP/1.1) runs in a third. Measured on 5M stored rows (50M with
--big): p50/p99 of the canonical query, of the same filter's count, of a lookup by id and of
GET /v1/credits; /v1/credits requests/s with SQLite and again with PostgreSQL + Redis; export
rows/s (CSV, NDJSON, Parquet) with the server's peak RSS. References from the same run: the
bare endpoint (latency and req/s), bare HTTP streaming of as many bytes as the CSV export, and
the engine alone writing the same CSV. The machine is shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from loadgen import RssSampler, free_port, serving, stop  # noqa: E402

BENCH = ROOT / "bench"
PY = sys.executable
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "bench_api"
REDIS_URL = "redis://127.0.0.1:6379/0"
EMAIL = "bench@api.bench"

FILTER = {"country": "US", "created_date": {"gte": "2024-01-01", "lte": "2024-12-31"},
          "status": ["active", "pending"]}
CANONICAL = {"filters": FILTER, "fields": ["email", "name", "created_date"],
             "sort": "-created_date", "limit": 1000}
# The count is metadata.total_records of the same filter with limit 1 and one field: the count
# query runs beside a 1-row page (the API always runs both).
COUNT = {"filters": FILTER, "fields": ["id"], "limit": 1}
TARGETS = {"canonical_p99_ms": 50.0, "lookup_p99_ms": 15.0, "credits_req_per_s": 1500.0,
           "export_rows_per_s": 500_000.0}

# Runs with RECORDBANK_DATA_DIR set, before the server starts (one process per store).
_PREPARE = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from bench_incremental import fill_sql
from recordbank.query.model import check_fields
from recordbank.runtime import open_runtime
rows, fill = int(sys.argv[1]), sys.argv[3] == "1"
rt = open_runtime()
s = rt.store
out = {}
if fill:
    t = time.perf_counter()
    for sql in fill_sql(rows):
        s.command(sql)
    s.command("OPTIMIZE TABLE records FINAL")
    out["fill_seconds"] = round(time.perf_counter() - t, 1)
where = ("country = 'US' AND created_date >= '2024-01-01' AND created_date <= '2024-12-31' "
         "AND status IN ('active', 'pending')")  # the canonical filter
out["rows"] = s.scalar("SELECT count() FROM records")
out["us_rows"] = s.scalar("SELECT count() FROM records WHERE country = 'US'")
out["canonical_count"] = s.scalar("SELECT count() FROM records WHERE " + where)
out["ids"] = [r[0] for r in s.rows("SELECT toString(id) FROM records ORDER BY rand() LIMIT 1000")]
# The engine alone, same process, no HTTP and no billing: the floor under each API figure.
from loadgen import percentile
from recordbank.query.compile import compile_query, compile_select
from recordbank.query.export import ExportStats, stream_export
from recordbank.query.model import QueryRequest
from recordbank.query.params import query_from_params
def timed(sql, params):
    ts = []
    for p in params:
        t0 = time.perf_counter()
        s.rows(sql, p)
        ts.append((time.perf_counter() - t0) * 1000)
    return {f"p{q}_ms": round(percentile(sorted(ts), q), 3) for q in (50, 99)}
n = int(sys.argv[4])
out["engine_ms"] = {}
for name, body in json.loads(sys.argv[5]).items():  # the SQL the API runs for these bodies
    cq = compile_query(QueryRequest.model_validate(body), secret="bench", max_offset=0,
                       count_cap=rt.settings.count_cap)
    out["engine_ms"][name] = timed(cq.sql, [cq.parameters] * n)
    out["engine_ms"][name + "_count"] = timed(cq.count_sql, [cq.count_parameters] * n)
fields = ", ".join(check_fields(None))
out["engine_ms"]["lookup"] = timed(
    "SELECT " + fields + " FROM records WHERE id = {u:UUID} LIMIT 1",
    [{"u": out["ids"][i % len(out["ids"])]} for i in range(n)])
# Export floors: the engine writing plain CSV (streamed as the server reads it), then the
# API's own export function (cell shaping, row counting) with no HTTP.
import chdb, os
sql = ("SELECT " + fields + " FROM records WHERE country = 'US' "
       "SETTINGS max_block_size = " + str(rt.settings.export_chunk_rows))
conn, rows, size, t = chdb.connect(os.path.realpath(s.path)), 0, 0, time.perf_counter()
stream = conn.send_query(sql, "CSV")
while (chunk := stream.fetch()) is not None:
    rows, size = rows + chunk.rows_read(), size + len(chunk.bytes())
stream.close(), conn.close()
sec = time.perf_counter() - t
out["engine_csv"] = {"rows": rows, "bytes": size, "seconds": round(sec, 3),
                     "rows_per_s": round(rows / sec)}
# the order the API gives an export without a sort: the table's (read in order, no sort)
from recordbank.api.routes.export import EXPORT_ORDER
select, params, names = compile_select(
    query_from_params([("country", "US"), ("_sort", ",".join(EXPORT_ORDER))]), limit=None)
for fmt in ("csv", "ndjson", "parquet"):
    stats, size, t = ExportStats(), 0, time.perf_counter()
    for piece in stream_export(s, select, params, names, fmt, max_rows=None,
                               settings=rt.settings, stats=stats):
        size += len(piece)
    sec = time.perf_counter() - t
    out["export_fn_" + fmt] = {"rows": stats.rows, "bytes": size, "seconds": round(sec, 3),
                               "rows_per_s": round(stats.rows / sec)}
print(json.dumps(out))
"""


def run(cmd: list[str], env: dict[str, str], stdin: str | None = None,
        timeout: float | None = None) -> str:
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    finally:
        stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    return out


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh load-generator process."""
    return json.loads(run([PY, str(BENCH / "loadgen.py")], os.environ.copy(), json.dumps(spec),
                          timeout=3600).strip().splitlines()[-1])


def base_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env.update(RECORDBANK_DATA_DIR=str(data), RECORDBANK_RATE_LIMIT="100000000/second",
               RECORDBANK_AUTH_FAILURE_LIMIT="100000000/minute",
               RECORDBANK_REDIS_PREFIX=f"bench-api-{os.getpid()}-{int(time.time())}")
    return env


def prepare(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Fill the store (or reuse a filled one), then sample ids, counts and the engine's CSV."""
    marker = data / "bench_fill.json"
    reuse = args.reuse and marker.exists() and json.loads(marker.read_text())["rows"] == args.rows
    if not reuse:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        print(f"filling {args.rows:,} rows into {data} …", flush=True)
    for name in ("recordbank.db", "recordbank.db-wal", "recordbank.db-shm"):
        (data / name).unlink(missing_ok=True)  # a fresh relational DB per run
    bodies = json.dumps({"canonical": CANONICAL, "count": COUNT})
    out = json.loads(run([PY, "-c", _PREPARE, str(args.rows), str(BENCH), "0" if reuse else "1",
                          str(min(args.requests, 300)), bodies],
                         base_env(data)).strip().splitlines()[-1])
    if out["rows"] != args.rows:
        raise RuntimeError(f"store has {out['rows']:,} rows, expected {args.rows:,}")
    if not reuse:
        marker.write_text(json.dumps({"rows": args.rows, "fill_seconds": out["fill_seconds"]}))
    else:
        out["fill_seconds"] = json.loads(marker.read_text()).get("fill_seconds")
        out["reused"] = True
    return out


def account(env: dict[str, str]) -> str:
    """A user with a key and a billion credits, through the CLI (relational DB only)."""
    cli = [PY, "-m", "recordbank.cli"]
    run([*cli, "users", "create", EMAIL], env)
    key = run([*cli, "keys", "create", EMAIL], env).strip().splitlines()[-1].strip()
    run([*cli, "credits", "add", EMAIL, "1000000000"], env)
    return key


def pg_reset(env: dict[str, str]) -> None:
    run([PY, "-c", "import psycopg, sys\n"
         "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
         f"    c.execute('DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE')\n"
         f"    c.execute('CREATE SCHEMA {PG_SCHEMA}')\n", PG_URL], env)


def redis_cleanup(prefix: str) -> None:
    with contextlib.suppress(Exception):
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{prefix}*", count=1000):
            r.delete(key)


def serve_cmd(port: int) -> list[str]:
    return [PY, "-m", "recordbank.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]


def check(result: dict[str, Any], what: str) -> dict[str, Any]:
    bad = result.get("non_200") or result.get("transport_errors") or (
        result.get("status") not in (None, 200))
    if bad:
        print(f"!! {what}: non-200 answers: {result.get('statuses', result.get('status'))} "
              f"{result.get('error_samples', '')} {result.get('transport_errors', '')}",
              flush=True)
    return result


def measure_api(args: argparse.Namespace, port: int, key: str, ids: list[str],
                which: tuple[str, ...]) -> dict[str, Any]:
    auth = {"X-API-Key": key}
    reqs = {
        "canonical": [{"method": "POST", "path": "/v1/query", "headers": auth,
                       "body": json.dumps(CANONICAL)}],
        "count": [{"method": "POST", "path": "/v1/query", "headers": auth,
                   "body": json.dumps(COUNT)}],
        "lookup": [{"path": f"/v1/records/{i}", "headers": auth} for i in ids],
        "credits": [{"path": "/v1/credits", "headers": auth}],
    }
    out: dict[str, Any] = {}
    for name in which:
        warm = 50 if name != "lookup" else 100
        out[name] = check(load({"mode": "latency", "port": port, "requests": reqs[name],
                                "n": args.requests, "warmup": warm}), name)
        print(f"  {name}: p50 {out[name]['p50_ms']} ms, p99 {out[name]['p99_ms']} ms", flush=True)
    out["credits_throughput"] = throughput(args, port, reqs["credits"], "credits")
    return out


def throughput(args: argparse.Namespace, port: int, reqs: list[dict[str, Any]],
               what: str) -> dict[str, Any]:
    """req/s at each --concurrency; the best one stands for the endpoint, all are kept."""
    runs = []
    for conns in args.concurrency:
        runs.append(check(load({"mode": "throughput", "port": port, "requests": reqs,
                                "concurrency": conns, "duration": args.duration}), what))
        print(f"  {what}: {runs[-1]['req_per_s']} req/s with {conns} connections", flush=True)
    best = dict(max(runs, key=lambda r: r["req_per_s"]))
    best["runs"] = [{k: r[k] for k in ("concurrency", "req_per_s", "p50_ms", "p99_ms",
                                        "non_200")} for r in runs]
    return best


def measure_exports(args: argparse.Namespace, proc: subprocess.Popen[bytes], port: int,
                    key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sampler = RssSampler(proc.pid)
    for fmt in ("csv", "ndjson", "parquet"):
        baseline = sampler.now()
        with RssSampler(proc.pid) as rss:
            res = check(load({"mode": "stream", "port": port, "format": fmt,
                              "spool": str(args.work / "export.parquet"),
                              "requests": [{"path": f"/v1/export?country=US&_format={fmt}",
                                            "headers": {"X-API-Key": key}}]}), f"export {fmt}")
        res.update(rss.summary(), baseline_rss_mb=round(baseline / 2**20),
                   rss_after_mb=round(sampler.now() / 2**20))
        out[fmt] = res
        print(f"  export {fmt}: {res['rows']:,} rows in {res['seconds']} s = "
              f"{res['rows_per_s']:,} rows/s, RSS {res['baseline_rss_mb']} -> "
              f"{res.get('peak_rss_mb')} MB", flush=True)
    return out


def measure_bare(args: argparse.Namespace, port: int, stream_bytes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("async", "sync"):
        req = [{"path": f"/bare/{kind}"}]
        out[kind] = check(load({"mode": "latency", "port": port, "requests": req,
                                "n": args.requests, "warmup": 200}), f"bare {kind}")
        out[f"{kind}_throughput"] = throughput(args, port, req, f"bare {kind}")
        print(f"  bare {kind}: p50 {out[kind]['p50_ms']} ms, p99 {out[kind]['p99_ms']} ms",
              flush=True)
    out["stream"] = check(load({"mode": "stream", "port": port, "format": "csv", "requests": [
        {"path": f"/bare/stream?size={stream_bytes}"}]}), "bare stream")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", action="store_true", help="50M stored rows (default 5M)")
    ap.add_argument("--rows", type=int, help="stored rows (overrides --big)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rb-bench-api"))
    ap.add_argument("--reuse", action="store_true", help="reuse a store filled with --rows")
    ap.add_argument("--requests", type=int, default=1000, help="requests per latency figure")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per throughput figure")
    ap.add_argument("--concurrency", default="4,16",
                    help="connections for throughput, comma-separated (the best is reported)")
    ap.add_argument("--skip-pg", action="store_true", help="no PostgreSQL + Redis run")
    ap.add_argument("--out", type=Path, help="result JSON (default <work>/api_<rows>.json)")
    args = ap.parse_args()
    args.rows = args.rows or (50_000_000 if args.big else 5_000_000)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so every `finally` runs

    data = args.work / f"data_{args.rows}"
    result: dict[str, Any] = {"rows": args.rows, "machine": machine(), "targets": TARGETS,
                              "concurrency": args.concurrency, "requests": args.requests,
                              "duration_s": args.duration}
    result["store"] = prepare(args, data)
    ids = result["store"].pop("ids")
    print(f"store: {result['store']}", flush=True)
    env = base_env(data)
    key = account(env)
    log = args.work / "server.log"
    port, bare_port = free_port(), free_port()
    with serving(serve_cmd(port), env, port, "/health", log) as proc:
        print("SQLite:", flush=True)
        result["sqlite"] = measure_api(args, port, key, ids,
                                       ("canonical", "count", "lookup", "credits"))
        result["export"] = measure_exports(args, proc, port, key)
    with serving([PY, str(BENCH / "bare_app.py"), "--port", str(bare_port)], env, bare_port,
                 "/bare/async", args.work / "bare.log"):
        print("bare FastAPI:", flush=True)
        result["bare"] = measure_bare(args, bare_port, result["export"]["csv"]["bytes"])
    if not args.skip_pg:
        pg_env = dict(env, RECORDBANK_DATABASE_URL=f"{PG_URL}?options=-csearch_path%3D{PG_SCHEMA}",
                      RECORDBANK_REDIS_URL=REDIS_URL)
        pg_reset(env)
        try:
            pg_key = account(pg_env)
            with serving(serve_cmd(port), pg_env, port, "/health", log):
                print("PostgreSQL + Redis:", flush=True)
                result["postgres_redis"] = measure_api(args, port, pg_key, ids,
                                                       ("canonical", "lookup", "credits"))
        finally:
            redis_cleanup(env["RECORDBANK_REDIS_PREFIX"])
    result["machine"]["loadavg_end"] = os.getloadavg()  # other work on the machine
    verify(result)
    print_table(result)
    path = args.out or args.work / f"api_{args.rows}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nresult: {path}")


def verify(result: dict[str, Any]) -> None:
    """The answers must be the right ones, not just fast: rows, totals, exported row counts."""
    store, problems = result["store"], []
    first = json.loads(result["sqlite"]["canonical"]["first_body"])
    total = first["metadata"]["total_records"]
    if len(first["data"]) != min(CANONICAL["limit"], store["canonical_count"]):
        problems.append(f"canonical query returned {len(first['data'])} rows")
    for name, answer in (("canonical", total), ("count", json.loads(
            result["sqlite"]["count"]["first_body"])["metadata"]["total_records"])):
        if answer != store["canonical_count"]:
            problems.append(f"{name} total_records {answer} != {store['canonical_count']}")
    for fmt, res in result["export"].items():
        if res["rows"] != store["us_rows"]:
            problems.append(f"export {fmt}: {res['rows']} rows, expected {store['us_rows']}")
    for part in ("sqlite", "postgres_redis"):
        for name, res in result.get(part, {}).items():
            if res.get("non_200") or res.get("transport_errors"):
                problems.append(f"{part} {name}: {res['statuses']} {res['error_samples']} "
                                f"{res.get('transport_errors') or ''}")
    result["problems"] = problems
    for p in problems:
        print(f"!! {p}")


def print_table(r: dict[str, Any]) -> None:
    bare, sq, pg = r["bare"], r["sqlite"], r.get("postgres_redis", {})
    b_lat, b_tput = bare["async"], bare["async_throughput"]["req_per_s"]
    b_sync = bare["sync_throughput"]["req_per_s"]
    eng = r["store"]["engine_ms"]
    rows: list[tuple[str, str, str, str, str]] = []

    def lat(label: str, res: dict[str, Any] | None, target: float | None = None,
            floor: str | None = None) -> None:
        if not res:
            return
        if floor:
            parts = [eng[f] for f in (floor, floor + "_count") if f in eng]
            label += " (engine " + " + ".join(
                f"{e['p50_ms']:.1f}/{e['p99_ms']:.1f}" for e in parts) + ")"
        goal = "" if target is None else (f"p99 <= {target:g} ms: " + (
            "met" if res["p99_ms"] <= target else "MISSED"))
        rows.append((label, f"{res['p50_ms']:.2f} / {res['p99_ms']:.2f} ms",
                     f"{b_lat['p50_ms']:.2f} / {b_lat['p99_ms']:.2f} ms",
                     f"{res['p50_ms'] / b_lat['p50_ms']:.1f} / "
                     f"{res['p99_ms'] / b_lat['p99_ms']:.1f}", goal))

    def tput(label: str, res: dict[str, Any] | None) -> None:
        if not res:
            return
        goal = TARGETS["credits_req_per_s"]
        rows.append((f"{label} ({res['concurrency']} conns)", f"{res['req_per_s']:,.0f} req/s",
                     f"{b_tput:,.0f} req/s (sync def {b_sync:,.0f})",
                     f"{res['req_per_s'] / b_tput:.2f}", f">= {goal:,.0f}: " + (
                         "met" if res["req_per_s"] >= goal else "MISSED")))

    lat("canonical query p50 / p99", sq["canonical"], TARGETS["canonical_p99_ms"], "canonical")
    lat("count (same filter) p50 / p99", sq["count"], None, "count")
    lat("lookup by id p50 / p99", sq["lookup"], TARGETS["lookup_p99_ms"], "lookup")
    lat("GET /v1/credits p50 / p99", sq["credits"])
    tput("GET /v1/credits, SQLite", sq["credits_throughput"])
    lat("canonical query p50 / p99 (PG + Redis)", pg.get("canonical"),
        TARGETS["canonical_p99_ms"])
    lat("lookup by id p50 / p99 (PG + Redis)", pg.get("lookup"), TARGETS["lookup_p99_ms"])
    tput("GET /v1/credits, PG + Redis", pg.get("credits_throughput"))
    engine, stream = r["store"]["engine_csv"], bare["stream"]
    stream_rows = r["export"]["csv"]["rows"] / stream["seconds"]
    for fmt, res in r["export"].items():
        goal, fn = TARGETS["export_rows_per_s"], r["store"][f"export_fn_{fmt}"]["rows_per_s"]
        rows.append((f"export {fmt} ({res['rows']:,} rows), RSS {res['baseline_rss_mb']} -> "
                     f"{res.get('peak_rss_mb')} MB (anon {res.get('peak_anon_mb')})",
                     f"{res['rows_per_s']:,} rows/s",
                     f"no HTTP {fn:,}; plain engine CSV {engine['rows_per_s']:,}; "
                     f"bare HTTP {stream_rows:,.0f}", f"{res['rows_per_s'] / fn:.2f}",
                     f">= {goal:,.0f}: " + ("met" if res["rows_per_s"] >= goal else "MISSED")))
    head = ("measure (engine floor p50/p99 ms)", f"{r['rows']:,} rows", "reference",
            "x reference", "target (50M)")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(5)]
    for row in [head, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    return {"cores": os.cpu_count(), "mem_gib": round(int(mem) / 2**20, 1),
            "python": platform.python_version(), "date": datetime.now(UTC).isoformat(),
            "commit": commit, "loadavg_start": os.getloadavg()}


if __name__ == "__main__":
    main()
