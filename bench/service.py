"""The ingestion service: `python bench/service.py [--files 10] [--rows 1000000] [--upload-gb 2]
[--database-url postgresql://… --redis-url redis://…]`.

1. Reference: one `recordbank ingest` of every file, in one process, on a fresh store.
2. Service: `recordbank serve` on another fresh store; every file uploaded at once over HTTP
   (POST /v1/ingest/uploads), then ingested by the server's queue workers. Total rows/s from
   the first upload byte to the last job's end, against the reference (target: >= 0.9).
   Meanwhile an SSE client follows every job (GET /v1/ingest/jobs/{id}/events) and records how
   long each progress update took from the worker's timestamp to the client (target: < 1 s).
3. A big upload (--upload-gb) to a server whose workers are off: the server's RSS growth while
   the body streams to disk (target: < 100 MB).
The machine is shared: compare within one run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from loadgen import RssSampler, free_port, serving  # noqa: E402

PY = sys.executable
EMAIL = "bench@service.bench"


def cli(*args: str) -> list[str]:
    return [PY, "-m", "recordbank.cli", *args]


SERVERS: dict[str, str] = {}  # --database-url / --redis-url: run on those instead
SCHEMAS: list[str] = []  # made by fresh_database, dropped at the end


def fresh_database(base: str) -> str:
    """A throw-away schema on the PostgreSQL server at `base`, so that each run starts with no
    jobs and no ingested checksums (the reference's files would be duplicates otherwise)."""
    import uuid

    import sqlalchemy

    schema = f"rb_bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    SCHEMAS.append(schema)
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def drop_schemas() -> None:
    if not SCHEMAS:
        return
    import sqlalchemy

    admin = sqlalchemy.create_engine(SERVERS["database"].replace(
        "postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        for schema in SCHEMAS:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def env_for(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env.update(RECORDBANK_DATA_DIR=str(data), RECORDBANK_RATE_LIMIT="1000000/second", **extra)
    if "database" in SERVERS:
        env["RECORDBANK_DATABASE_URL"] = fresh_database(SERVERS["database"])
    if "redis" in SERVERS:
        env["RECORDBANK_REDIS_URL"] = SERVERS["redis"]
    return env


def make_files(folder: Path, files: int, rows: int) -> list[Path]:
    from recordbank.sample import HEADER, generate_people, write_csv

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(files):
        path = folder / f"people_{rows}_{i}.csv"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            write_csv(tmp, generate_people(rows, seed=1000 + i, start=i * rows), HEADER)
            tmp.rename(path)
        out.append(path)
    return out


def admin_key(env: dict[str, str]) -> str:
    subprocess.run(cli("users", "create", EMAIL, "--admin"), env=env, check=True,
                   capture_output=True)
    made = subprocess.run(cli("keys", "create", EMAIL, "--admin"), env=env, check=True,
                          capture_output=True, text=True)
    return made.stdout.strip().splitlines()[-1].strip()


def reference(files: list[Path], data: Path) -> dict[str, Any]:
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    env = env_for(data)
    t = time.perf_counter()
    subprocess.run(cli("ingest", "-q", *map(str, files)), env=env, check=True,
                   capture_output=True, timeout=7200)
    seconds = time.perf_counter() - t
    rows = count_rows(env)
    return {"seconds": round(seconds, 2), "rows": rows, "rows_per_s": round(rows / seconds)}


def count_rows(env: dict[str, str]) -> int:
    out = subprocess.run([PY, "-c", "from recordbank.runtime import open_runtime\n"
                          "print(open_runtime().store.scalar('SELECT count() FROM records'))"],
                         env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def follow(base: str, key: str, job_id: int, delays: list[float], gaps: list[float],
           stop: threading.Event) -> None:
    """SSE client: for each new progress report (a new `updated_at`), now - that timestamp.

    The stream repeats the last report at least every second while a stage makes no new one
    (detect, publish): those repeats are not late deliveries and are not counted as delays;
    the longest silence between two events is recorded in `gaps` instead.
    """
    seen: set[str] = set()
    last_event: float | None = None
    with httpx.Client(timeout=None) as client, client.stream(
            "GET", f"{base}/v1/ingest/jobs/{job_id}/events",
            headers={"X-API-Key": key}) as r:
        event = None
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
                now = time.monotonic()
                if last_event is not None and event == "progress":
                    gaps.append(now - last_event)
                last_event = now
            elif line.startswith("data:") and event == "progress":
                data = json.loads(line.split(":", 1)[1])
                stamp = data.get("updated_at")
                if stamp and stamp not in seen:
                    seen.add(stamp)
                    sent = datetime.fromisoformat(stamp)
                    delays.append((datetime.now(UTC) - sent).total_seconds())
            elif event in ("completed", "failed", "cancelled") and line == "":
                return


def service(files: list[Path], data: Path, workers: int) -> dict[str, Any]:
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    env = env_for(data, RECORDBANK_INGEST_WORKERS=str(workers))
    key = admin_key(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = data / "server.log"
    with serving(cli("serve", "--port", str(port), "--log-level", "warning"), env, port,
                 "/health", log):
        jobs: list[int] = []
        lock = threading.Lock()

        def upload(path: Path) -> None:
            with path.open("rb") as fh, httpx.Client(timeout=None) as client:
                r = client.post(f"{base}/v1/ingest/uploads", params={"filename": path.name},
                                content=fh, headers={"X-API-Key": key,
                                                     "Content-Type": "text/csv"})
            r.raise_for_status()
            with lock:
                jobs.append(int(r.json()["data"]["id"]))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=upload, args=(p,)) for p in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        uploaded = time.perf_counter() - t0
        delays: list[float] = []
        gaps: list[float] = []
        stop = threading.Event()
        followers = [threading.Thread(target=follow, args=(base, key, j, delays, gaps, stop),
                                      daemon=True) for j in jobs]
        for f in followers:
            f.start()
        # The SSE followers end on each job's final event; the job list is read only every
        # 2 s as a fallback (a poll of every job 5 times a second would load the server the
        # workers share).
        with httpx.Client(timeout=30, headers={"X-API-Key": key}) as client:
            while True:
                for f in followers:
                    f.join(timeout=2.0 / len(followers))
                if any(f.is_alive() for f in followers):
                    continue
                states = [client.get(f"{base}/v1/ingest/jobs/{j}").json()["data"] for j in jobs]
                if all(s["status"] in ("succeeded", "failed", "cancelled") for s in states):
                    break
                time.sleep(2.0)
        seconds = time.perf_counter() - t0
        stop.set()
    failed = [s for s in states if s["status"] != "succeeded"]
    rows = count_rows(env)
    delays.sort()
    return {"seconds": round(seconds, 2), "upload_seconds": round(uploaded, 2), "rows": rows,
            "rows_per_s": round(rows / seconds), "workers": workers, "failed_jobs": failed,
            "sse_progress_events": len(delays),
            "sse_delay_p50_s": round(delays[len(delays) // 2], 3) if delays else None,
            "sse_delay_p90_s": round(delays[int(len(delays) * 0.9)], 3) if delays else None,
            "sse_delay_max_s": round(delays[-1], 3) if delays else None,
            "sse_events_over_1s": sum(d > 1 for d in delays),
            "sse_max_gap_between_progress_events_s": round(max(gaps), 3) if gaps else None}


def big_upload(work: Path, gigabytes: float) -> dict[str, Any]:
    path = work / f"big_{gigabytes}g.csv"
    target = int(gigabytes * 2**30)
    if not path.exists() or path.stat().st_size < target:
        block = (make_files(work / "block", 1, 20_000)[0]).read_bytes()
        header, body = block.split(b"\n", 1)
        with path.open("wb") as fh:
            fh.write(header + b"\n")
            written = len(header) + 1
            while written < target:
                fh.write(body)
                written += len(body)
    data = work / "upload_data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    env = env_for(data, RECORDBANK_INGEST_WORKERS="0")
    key = admin_key(env)
    port = free_port()
    with serving(cli("serve", "--port", str(port), "--log-level", "warning"), env, port,
                 "/health", work / "upload_server.log") as proc:
        sampler = RssSampler(proc.pid)
        before = sampler.now()
        t = time.perf_counter()
        with sampler, path.open("rb") as fh, httpx.Client(timeout=None) as client:
            r = client.post(f"http://127.0.0.1:{port}/v1/ingest/uploads",
                            params={"filename": path.name}, content=fh,
                            headers={"X-API-Key": key, "Content-Type": "text/csv"})
        seconds = time.perf_counter() - t
        r.raise_for_status()
    size = path.stat().st_size
    peak = max(s.get("VmRSS", 0) for _, s in sampler.samples)
    return {"bytes": size, "seconds": round(seconds, 2), "mb_per_s": round(size / seconds / 1e6),
            "rss_before_mb": round(before / 2**20), "rss_peak_mb": round(peak / 2**20),
            "rss_growth_mb": round((peak - before) / 2**20), "status": r.status_code}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per file")
    ap.add_argument("--workers", type=int, default=1, help="RECORDBANK_INGEST_WORKERS")
    ap.add_argument("--upload-gb", type=float, default=2.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rb-bench-service"))
    ap.add_argument("--database-url", help="postgresql://… : each run on a fresh schema there "
                                           "(default: the embedded SQLite)")
    ap.add_argument("--redis-url", help="redis://… for the rate limiter (default: in memory)")
    args = ap.parse_args()
    if args.database_url:
        SERVERS["database"] = args.database_url
        atexit.register(drop_schemas)
    if args.redis_url:
        SERVERS["redis"] = args.redis_url
    args.work.mkdir(parents=True, exist_ok=True)
    files = make_files(args.work / "files", args.files, args.rows)
    print(f"{len(files)} files x {args.rows:,} rows", flush=True)
    ref = reference(files, args.work / "reference_data")
    print("reference (one `recordbank ingest`):", ref, flush=True)
    svc = service(files, args.work / "service_data", args.workers)
    print("service (uploads + queue workers):", svc, flush=True)
    big = big_upload(args.work, args.upload_gb) if args.upload_gb > 0 else None
    print("big upload:", big, flush=True)
    ratio = svc["rows_per_s"] / ref["rows_per_s"]
    result = {"files": args.files, "rows_per_file": args.rows, "servers": SERVERS,
              "reference": ref,
              "service": svc, "big_upload": big, "service_vs_reference": round(ratio, 3),
              "targets": {"service_vs_reference": ">= 0.9", "sse_delay_max_s": "< 1",
                          "upload_rss_growth_mb": "< 100"}}
    out = args.work / f"service_{args.files}x{args.rows}{'_pg' if SERVERS else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nservice / reference rows/s: {ratio:.2f} (target >= 0.90); SSE delay max "
          f"{svc['sse_delay_max_s']} s (target < 1); upload RSS growth "
          f"{big['rss_growth_mb'] if big else '-'} MB (target < 100)\nresult: {out}")


if __name__ == "__main__":
    main()
