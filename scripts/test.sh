#!/usr/bin/env bash
# The whole test suite. Embedded defaults always; PostgreSQL too when RECORDBANK_DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
exec .venv/bin/python -m pytest "$@"
