#!/usr/bin/env bash
# Set everything up, ingest a messy sample and serve it over the API on the embedded defaults
# (no server to install). Prints a demo key and requests to paste; Ctrl-C stops the API.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/recordbank demo "$@"
exec .venv/bin/recordbank serve --demo --host "${RECORDBANK_HOST:-127.0.0.1}" --port "${RECORDBANK_PORT:-8000}"
