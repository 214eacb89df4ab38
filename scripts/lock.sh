#!/usr/bin/env bash
# Refresh the lock: the newest versions pyproject.toml's ranges allow (less requirements/pins.txt),
# exact, with hashes, for Python 3.11 on Linux. Review `git diff requirements/`, run scripts/test.sh,
# commit. requirements/base.txt (the main job) is solved inside requirements/dev.txt (the tests), so
# the two never disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
compile() {
  uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
    --no-header --annotation-style line --quiet "$@"
}
compile --extra dev -c requirements/pins.txt -o requirements/dev.txt
compile -c requirements/dev.txt -o requirements/base.txt
echo "uv==$(uv --version | cut -d' ' -f2)" | uv pip compile - --generate-hashes --python-version 3.11 --no-header \
  --quiet -o requirements/tools.txt
sed -i '1i # The installer setup.sh uses for the locks (fast, checks every hash); refreshed by scripts/lock.sh.' \
  requirements/tools.txt
echo "lock: $(grep -c '==' requirements/base.txt) base and $(grep -c '==' requirements/dev.txt) test packages pinned"
