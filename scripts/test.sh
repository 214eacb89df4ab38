#!/usr/bin/env bash
# Set up, then run the whole test suite (real models, real video, real servers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
