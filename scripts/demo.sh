#!/usr/bin/env bash
# Set everything up and run the main job on the embedded defaults (no server needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/recordbank demo "$@"
