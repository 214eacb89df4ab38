#!/usr/bin/env bash
# Set up everything the tests need, then lint, type-check and run the whole test suite (real models,
# real video, real servers). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
