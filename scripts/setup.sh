#!/usr/bin/env bash
# Set up everything streamproc needs on a fresh Debian/Ubuntu machine: system packages (only when a
# needed program is missing, so repeat runs stay fast) and a virtual environment with the project.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# program -> Debian package that provides it
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
)

missing=()
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
if [ ${#missing[@]} -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "setup: installing system packages: $packages"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $packages >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.streamproc-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing streamproc and its Python dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
