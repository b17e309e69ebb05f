"""A small HTTP/1.1 load generator: raw keep-alive connections on asyncio (uvloop if installed).

httpx spends ~0.5 ms of client CPU per request, which on a 2-core machine shared with the
server caps the measurement below the 1,500 req/s being measured. Here each request is
pre-built bytes and the response parser reads only the status line, the framing headers and the
body (Content-Length or chunked), so the client costs tens of microseconds per request.

Used as a library (`run(spec)`) or as a process: `python bench/loadgen.py < spec.json` prints
the result as JSON. Modes:
  latency     one connection, `n` requests one after another: p50/p99/mean in ms
  throughput  `concurrency` connections for `duration` seconds: req/s, statuses, p50/p99
  stream      one request whose body is counted as it arrives (rows for csv/ndjson; parquet
              is spooled to a file and its footer read): rows/s and bytes/s
Every response's status is checked; anything but 200 is counted and one body sample kept.
Also the other half of measuring a server from outside: starting it in its own session and
stopping it with everything it started (`serving`, `stop`), and following its VmRSS (RssSampler).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Request = dict[str, Any]  # {"method", "path", "headers": {..}, "body": str | None}


class Sink:
    """Where a response body goes: kept (small answers), counted, or spooled to a file."""

    def __init__(self, keep: bool = False, count_lines: bool = False,
                 spool: Path | None = None) -> None:
        self.keep = keep
        self.count_lines = count_lines
        self.lines = 0
        self.size = 0
        self.parts: list[bytes] = []
        self.tail = b""  # the last bytes, where an export's trailer line is
        self._file = spool.open("wb") if spool is not None else None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.count_lines:
            self.lines += data.count(b"\n")
            self.tail = (self.tail + data)[-4096:]
        if self._file is not None:
            self._file.write(data)
        elif self.keep:
            self.parts.append(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def body(self) -> bytes:
        return b"".join(self.parts)


def build(req: Request, host: str, port: int) -> bytes:
    """The request's bytes, once: the hot loop only writes them."""
    body = req.get("body")
    raw = body.encode() if isinstance(body, str) else (body or b"")
    lines = [f"{req.get('method', 'GET')} {req['path']} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (req.get("headers") or {}).items()]
    if raw or req.get("method", "GET") in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(raw)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + raw


class Conn:
    """One keep-alive connection; reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def send(self, raw: bytes, sink: Sink) -> tuple[int, dict[bytes, bytes]]:
        """Send one request, read its whole response into `sink`; (status, headers)."""
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        reader = self.reader
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                await _read_into(reader, size, sink)
                await reader.readexactly(2)
        elif b"content-length" in headers:
            await _read_into(reader, int(headers[b"content-length"]), sink)
        else:  # body ends with the connection
            while data := await reader.read(1 << 20):
                sink.feed(data)
            await self.close()
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return status, headers


async def _read_into(reader: asyncio.StreamReader, size: int, sink: Sink) -> None:
    if size <= 1 << 16:
        sink.feed(await reader.readexactly(size))
        return
    while size:
        data = await reader.read(min(size, 1 << 20))
        if not data:
            raise ConnectionError("connection closed mid-body")
        sink.feed(data)
        size -= len(data)


def percentile(sorted_ms: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the samples at or below it."""
    if not sorted_ms:
        return float("nan")
    return sorted_ms[max(0, math.ceil(p / 100 * len(sorted_ms)) - 1)]


def _summary(times_ms: list[float], statuses: Counter[int], errors: list[str]) -> dict[str, Any]:
    times_ms.sort()
    bad = sum(n for s, n in statuses.items() if s != 200)
    return {"requests": len(times_ms), "p50_ms": round(percentile(times_ms, 50), 3),
            "p99_ms": round(percentile(times_ms, 99), 3),
            "mean_ms": round(sum(times_ms) / len(times_ms), 3) if times_ms else None,
            "max_ms": round(times_ms[-1], 3) if times_ms else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "non_200": bad, "error_samples": errors[:3]}


def _note(status: int, sink: Sink, errors: list[str]) -> None:
    if status != 200 and len(errors) < 3:
        errors.append(f"{status}: {sink.body()[:300].decode('utf-8', 'replace')}")


async def latency(host: str, port: int, reqs: list[Request], n: int,
                  warmup: int = 0) -> dict[str, Any]:
    raws = [build(r, host, port) for r in reqs]
    conn = Conn(host, port)
    times: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    first: bytes = b""
    try:
        for i in range(warmup + n):
            sink = Sink(keep=True)
            t = time.perf_counter()
            status, _ = await conn.send(raws[i % len(raws)], sink)
            elapsed = (time.perf_counter() - t) * 1000
            if i >= warmup:
                times.append(elapsed)
                statuses[status] += 1
                _note(status, sink, errors)
                if i == warmup:
                    first = sink.body()
    finally:
        await conn.close()
    out = _summary(times, statuses, errors)
    out["first_body"] = first[:1 << 20].decode("utf-8", "replace")
    return out


async def throughput(host: str, port: int, reqs: list[Request], concurrency: int,
                     duration: float, warmup: float = 1.0) -> dict[str, Any]:
    raws = [build(r, host, port) for r in reqs]
    times: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    failures: Counter[str] = Counter()
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration

    async def worker(k: int) -> None:
        conn = Conn(host, port)
        i = k
        try:
            while (now := time.perf_counter()) < stop:
                sink = Sink(keep=True)
                try:
                    status, _ = await conn.send(raws[i % len(raws)], sink)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    failures[type(exc).__name__] += 1
                    await conn.close()
                    continue
                end = time.perf_counter()
                i += concurrency
                if now >= measure_from and end <= stop:
                    times.append((end - now) * 1000)
                    statuses[status] += 1
                    _note(status, sink, errors)
        finally:
            await conn.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    out = _summary(times, statuses, errors)
    out.update(concurrency=concurrency, seconds=duration,
               req_per_s=round(len(times) / duration, 1), transport_errors=dict(failures))
    return out


async def stream(host: str, port: int, req: Request, fmt: str,
                 spool: Path | None = None) -> dict[str, Any]:
    """One streamed download; rows counted from the bytes (one line per row, csv has a header)."""
    conn = Conn(host, port)
    sink = Sink(count_lines=fmt in ("csv", "ndjson"), spool=spool if fmt == "parquet" else None,
                keep=False)
    t = time.perf_counter()
    try:
        status, headers = await conn.send(build(req, host, port), sink)
    finally:
        sink.close()
        await conn.close()
    seconds = time.perf_counter() - t
    # CSV: a header line, and a "# …" line if cut short; NDJSON: a {"_export": …} trailer.
    last = sink.tail.rstrip(b"\n").rpartition(b"\n")[2]
    trailer = last.startswith(b"#" if fmt == "csv" else b'{"_export"') if sink.lines else False
    rows = sink.lines - (1 if fmt == "csv" and sink.lines else 0) - int(trailer)
    if fmt == "parquet" and spool is not None and status == 200:
        import pyarrow.parquet as pq

        rows = pq.read_metadata(spool).num_rows
        spool.unlink()
    return {"status": status, "seconds": round(seconds, 3), "rows": rows, "bytes": sink.size,
            "rows_per_s": round(rows / seconds) if seconds else None,
            "mb_per_s": round(sink.size / seconds / 1e6, 1) if seconds else None,
            "trailer": last.decode("utf-8", "replace") if trailer else None,
            "headers": {k.decode(): v.decode("latin-1") for k, v in headers.items()
                        if k.startswith(b"x-")}}


class RssSampler:
    """VmRSS of one process every 50 ms, from /proc/<pid>/status, with its anonymous part
    (heap: what "flat memory" is about) and its file part (mapped store files, page cache)."""

    FIELDS = ("VmRSS", "RssAnon", "RssFile")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def read(self) -> dict[str, int]:
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                name = line.split(":", 1)[0]
                if name in self.FIELDS:
                    out[name] = int(line.split()[1]) * 1024
        return out

    def now(self) -> int:
        return self.read().get("VmRSS", 0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.samples.append((time.monotonic(), self.read()))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, int]:
        """Peaks overall and per half of the run: flat memory means the halves agree."""
        if not self.samples:
            return {}
        mid = (self.samples[0][0] + self.samples[-1][0]) / 2
        out = {}
        for name, key in (("VmRSS", "rss"), ("RssAnon", "anon"), ("RssFile", "file")):
            first = [r.get(name, 0) for t, r in self.samples if t <= mid] or [0]
            second = [r.get(name, 0) for t, r in self.samples if t > mid] or [0]
            out[f"peak_{key}_mb"] = round(max(first + second) / 2**20)
            out[f"peak_{key}_first_half_mb"] = round(max(first) / 2**20)
            out[f"peak_{key}_second_half_mb"] = round(max(second) / 2**20)
        return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    """The process and everything it started (own session), politely then not."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def serving(cmd: list[str], env: dict[str, str], port: int, ready: str,
            log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own session, up until the block ends (whatever way it ends)."""
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[2:4]} exited {proc.returncode}; log {log}:\n"
                                   + log.read_text()[-3000:])
            with (contextlib.suppress(OSError),
                  socket.create_connection(("127.0.0.1", port), timeout=5) as sock):
                sock.sendall(f"GET {ready} HTTP/1.1\r\nHost: x\r\n"
                             "Connection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[2:4]} not ready after 300 s; log {log}")
            time.sleep(0.3)
        yield proc
    finally:
        stop(proc)


def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec.get("host", "127.0.0.1"), int(spec["port"])
    mode = spec["mode"]
    if mode == "latency":
        coro = latency(host, port, spec["requests"], int(spec["n"]), int(spec.get("warmup", 0)))
    elif mode == "throughput":
        coro = throughput(host, port, spec["requests"], int(spec["concurrency"]),
                          float(spec["duration"]), float(spec.get("warmup", 1.0)))
    elif mode == "stream":
        spool = Path(spec["spool"]) if spec.get("spool") else None
        coro = stream(host, port, spec["requests"][0], spec["format"], spool)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
