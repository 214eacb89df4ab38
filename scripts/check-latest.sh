#!/usr/bin/env bash
# Before raising an upper bound: build a scratch venv from the newest versions pyproject.toml's
# ranges allow (ignoring the lock), print which versions differ from the lock, and run the tests
# there. Arguments go to pytest (default: the whole suite). The lock and .venv are left alone.
#   scripts/check-latest.sh                     everything
#   scripts/check-latest.sh -m "not slow"       the quick set
set -uo pipefail
cd "$(dirname "$0")/.."
scratch=${CHECK_VENV:-$(mktemp -d /tmp/streamproc-latest.XXXXXX)}
python3 -m venv "$scratch"
"$scratch/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r requirements/tools.txt
echo "check-latest: installing the newest allowed versions into $scratch"
"$scratch/bin/uv" pip install -q --upgrade --python "$scratch/bin/python" -e ".[dev]"  # venv's own setuptools too
echo "check-latest: versions that differ from requirements/dev.txt (lock -> newest allowed):"
normalise() { sed 's/ .*//; s/==/=/' | tr 'A-Z_' 'a-z-' | LC_ALL=C sort -t= -k1,1; }
"$scratch/bin/uv" pip freeze --python "$scratch/bin/python" --exclude-editable | normalise > "$scratch/newest.txt"
grep -E '^[A-Za-z0-9_.-]+==' requirements/dev.txt | normalise > "$scratch/locked.txt"
LC_ALL=C join -t= "$scratch/locked.txt" "$scratch/newest.txt" \
  | awk -F= '$2 != $3 { printf "  %-28s %s -> %s\n", $1, $2, $3; changed++ } END { if (!changed) print "  (none)" }'
echo "check-latest: running the tests against them"
PATH="$scratch/bin:$PATH" "$scratch/bin/python" -m pytest -q -p no:cacheprovider "$@"
status=$?
echo "check-latest: pytest exit status $status (venv kept at $scratch)"
exit $status
