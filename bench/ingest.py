"""Ingestion speed and memory: `python bench/ingest.py [--rows N] [--big] [--incremental]`.

Every measurement runs in its own subprocess (fresh store, peak RSS from wait4) next to a
reference measured in the same run: the raw engine load of the same CSV with no normalization
(`INSERT INTO t SELECT * FROM file(...)`). Ratios are what to compare across runs: the machine
is shared and absolute times drift.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"

_RAW_LOAD = """
import sys, time, clickhouse_connect
c = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
c.command("CREATE TABLE raw ENGINE = MergeTree ORDER BY tuple() AS SELECT * FROM "
          "file({p:String}, 'CSVWithNames') LIMIT 0", parameters={"p": sys.argv[2]})
t = time.perf_counter()
c.command("INSERT INTO raw SELECT * FROM file({p:String}, 'CSVWithNames')",
          parameters={"p": sys.argv[2]})
print(time.perf_counter() - t, c.query("SELECT count() FROM raw").result_rows[0][0])
"""


def rss_of(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run under /usr/bin/time-like accounting: a wrapper prints the child's own peak RSS."""
    wrapper = [sys.executable, "-c",
               "import os,sys,subprocess,resource,time,json;"
               "t=time.perf_counter();p=subprocess.Popen(sys.argv[1:]);"
               "_,st,ru=os.wait4(p.pid,0);"
               "print(json.dumps({'wall':time.perf_counter()-t,'rss':ru.ru_maxrss*1024,"
               "'rc':os.waitstatus_to_exitcode(st)}),file=sys.stderr)", *cmd]
    proc = subprocess.run(wrapper, env=env, capture_output=True, text=True)
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    if info["rc"] != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
    return info["wall"], info["rss"], proc.stdout


def env_for(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env["RECORDBANK_DATA_DIR"] = str(data)
    return env


def ingest_cmd(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "recordbank.cli", "ingest", "--json", str(path), *extra]


def stage_seconds(stdout: str) -> dict[str, float]:
    """The pipeline's own stage timings, from `recordbank ingest --json`."""
    result = json.loads(stdout.strip().splitlines()[-1])[0]
    if result["status"] != "succeeded":
        raise RuntimeError(result.get("error"))
    return result["timings"]


def measure_ingest(path: Path, rows: int, work: Path, label: str) -> dict[str, object]:
    data = work / f"data_{label}"
    shutil.rmtree(data, ignore_errors=True)
    wall, rss, stdout = rss_of(ingest_cmd(path), env_for(data))
    shutil.rmtree(data, ignore_errors=True)
    return {"what": f"recordbank ingest {label}", "rows": rows, "seconds": round(wall, 2),
            "rows_per_s": int(rows / wall), "peak_rss_mb": round(rss / 2**20),
            "stages": stage_seconds(stdout)}


def measure_raw(path: Path, rows: int, work: Path) -> dict[str, object]:
    store = work / "raw_store"
    shutil.rmtree(store, ignore_errors=True)
    wall, rss, stdout = rss_of([sys.executable, "-c", _RAW_LOAD, str(store), str(path)],
                               env_for(work))
    seconds, count = stdout.split()
    shutil.rmtree(store, ignore_errors=True)
    return {"what": "raw engine load (INSERT SELECT * FROM file)", "rows": int(count),
            "seconds": round(float(seconds), 2), "rows_per_s": int(int(count) / float(seconds)),
            "process_seconds": round(wall, 2), "peak_rss_mb": round(rss / 2**20)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--small-rows", type=int, default=300_000, help="rows for XLSX and XML")
    ap.add_argument("--big", action="store_true", help="also 20M-row CSV (RSS flat in size)")
    ap.add_argument("--incremental", action="store_true",
                    help="1M-row file, half stored, into a 50M-row table")
    ap.add_argument("--stored", default="50000000",
                    help="rows already stored for --incremental; several, comma-separated, "
                         "show how dedup cost grows with the table")
    ap.add_argument("--formats", default="csv,jsonl,parquet,xlsx,xml")
    ap.add_argument("--work", type=Path, default=OUT)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse input files left in --work by an earlier run")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from recordbank.sample import write_bench_files as generate

    def write_bench_files(dest: Path, n: int, fmts: list[str], seed: int) -> dict[str, Path]:
        found = {f: next(iter(sorted(dest.glob(f"people_{n}.*{f.split('.')[-1]}"))), None)
                 for f in fmts} if args.reuse and dest.exists() else {}
        missing = [f for f in fmts if not found.get(f)]
        out = {f: p for f, p in found.items() if p}
        if missing:
            out.update(generate(dest, n, missing, seed=seed))
        return out

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, object]] = []
    formats = [f for f in args.formats.split(",") if f and f != "none"]
    big = [f for f in formats if f in ("csv", "jsonl", "parquet")]
    small = [f for f in formats if f not in big]
    t = time.perf_counter()
    files = write_bench_files(work / "in", args.rows, big, seed=1) if big else {}
    if small:
        files.update({f"{k}-small": v for k, v in
                      write_bench_files(work / "in", args.small_rows, small, seed=2).items()})
    print(f"generated inputs in {time.perf_counter() - t:.0f} s", flush=True)

    raw = measure_raw(files["csv"], args.rows, work) if "csv" in files else None
    if raw:
        results.append(raw)
        print(raw, flush=True)
    for fmt, path in files.items():
        rows = args.small_rows if fmt.endswith("-small") else args.rows
        r = measure_ingest(path, rows, work, fmt)
        if raw:
            r["vs_raw_load"] = round(int(r["rows_per_s"]) / int(raw["rows_per_s"]), 2)
        results.append(r)
        print(r, flush=True)
    if args.big:
        bigfile = write_bench_files(work / "in_big", args.rows * 4, ["csv"], seed=1)["csv"]
        r = measure_ingest(bigfile, args.rows * 4, work, f"csv-{args.rows * 4}")
        results.append(r)
        print(r, flush=True)
        if not args.reuse:
            shutil.rmtree(work / "in_big", ignore_errors=True)
    if args.incremental:
        from bench_incremental import measure_incremental

        for stored in (int(x) for x in args.stored.split(",")):
            r = measure_incremental(work, stored)
            results.append(r)
            print(r, flush=True)
    report = {"machine": f"{platform.node()} {os.cpu_count()} cores "
                         f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f}"
                         " GiB", "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    (work / "ingest.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
