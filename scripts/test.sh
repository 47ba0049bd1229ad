#!/usr/bin/env bash
# Sets up (see bootstrap.sh) and runs every check: ruff lint, ruff format, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest "$@"
