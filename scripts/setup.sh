#!/usr/bin/env bash
# Set up streamproc on a fresh Debian/Ubuntu machine: a virtual environment with the project installed
# (editable) and, only when a needed program is missing, the system packages that provide it.
#   scripts/setup.sh          what the main job needs: the base install (PyAV brings its own FFmpeg)
#   scripts/setup.sh --test   also the dev extra (TensorFlow, test tools) and the programs the tests
#                             run for real: FFmpeg, Mosquitto, RTSP servers (Perl, GStreamer), Chromium
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MODE=base
[ "${1:-}" = "--test" ] && MODE=test

# program -> Debian package that provides it (test mode only)
declare -A NEEDED=(
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [mosquitto]=mosquitto
  [mosquitto_sub]=mosquitto-clients
  [openssl]=openssl
  [rtsp-server-perl]=rtsp-server-perl
  [chromium]=chromium                # the live-view test drives a real headless browser
  [chromedriver]=chromium-driver
  [mount]=mount                      # the disk-full tests mount a small tmpfs (CI runs as root)
  [hostname]=hostname                # `hostname -I`: the addresses the HTTP start-up line should list
  [curl]=curl                        # the detection API test posts a photo as users do, with curl
)

missing=()
# Debian's python3 has no ensurepip (so no working venv) until python3-venv is installed
"$PYTHON" -c "import ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
if [ "$MODE" = test ]; then
  for program in "${!NEEDED[@]}"; do
    command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] || missing+=("${NEEDED[$program]}")
  done
  # GStreamer's RTSP server for the camera tests: Python bindings of the system python3, not programs
  if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' >/dev/null 2>&1; then
    missing+=(python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp)
  fi
  for plugin in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav; do
    dpkg -s "$plugin" >/dev/null 2>&1 || missing+=("$plugin")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "setup: installing system packages (apt-get, about 1-3 minutes on a fresh machine): $packages"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $packages \
    | grep --line-buffered -E '^(Get|Setting up)' || true
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# Exact versions with hashes (requirements/, made by scripts/lock.sh): a fresh clone on any later
# day installs what the tests last passed with. One stamp per mode: the test install includes the base one.
lock=requirements/base.txt
[ "$MODE" = test ] && lock=requirements/dev.txt
stamp="$VENV/.streamproc-installed-$MODE"
[ "$MODE" = base ] && [ -f "$VENV/.streamproc-installed-test" ] && stamp="$VENV/.streamproc-installed-test"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  [ "$MODE" = base ] && rm -f "$VENV/.streamproc-installed-test"  # a stale test install: now base only
  echo "setup: installing $(grep -c '==' "$lock") locked packages from $lock into $VENV"
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip >/dev/null
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r requirements/tools.txt
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --require-hashes -r "$lock"
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --no-deps -e .
  touch "$stamp"
fi
