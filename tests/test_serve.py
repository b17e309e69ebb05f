"""The README's first command, end to end in a subprocess: ingest the demo sample, then
`recordbank serve --demo` prints a working key and serves the demo data over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


@pytest.mark.slow
def test_demo_then_serve_answers_with_the_printed_key(tmp_path: Path, free_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBANK_")}
    env["RECORDBANK_DATA_DIR"] = str(tmp_path / "data")
    cli = [sys.executable, "-m", "recordbank.cli"]
    demo = subprocess.run([*cli, "demo", "--rows", "200", "--dest", str(tmp_path / "sample")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    port = free_port
    server = subprocess.Popen([*cli, "serve", "--demo", "--port", str(port),
                               "--log-level", "warning"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        key = None
        assert server.stdout is not None
        deadline = time.monotonic() + 120
        while key is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            found = re.search(r"rb_live_[A-Za-z0-9]{40}", line)
            key = found.group(0) if found else None
        assert key, "serve --demo printed no key"
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.get(f"{base}/v1/records?_fields=name,email&_limit=5",
                      headers={"X-API-Key": key}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["metadata"]["returned"] == 5 and body["metadata"]["total_records"] > 100
        assert body["metadata"]["credits_remaining"] == 10_000 - body["metadata"]["credits_used"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
