#!/usr/bin/env bash
# Set up everything the tests need, then lint, type-check and run the whole test suite (real models,
# real video, real servers). Arguments go to pytest (e.g. -m "not slow" for the quick inner loop).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scripts/setup.sh --test
echo "test.sh: set up in $((SECONDS - started)) s; ruff, mypy, then pytest"
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"   # its closing line stays the last one (CI reads it)
