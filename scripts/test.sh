#!/usr/bin/env bash
# Sets up (see bootstrap.sh) and runs every check: ruff lint and format, the import contracts
# (pyproject.toml's [tool.importlinter]), mypy over the engine, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache
.venv/bin/mypy
QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest "$@"
