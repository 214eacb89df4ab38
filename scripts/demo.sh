#!/usr/bin/env bash
# The main job on the bundled sample: set up the base install (no TensorFlow, no test servers), then
# detect faces in samples/sample.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p out
.venv/bin/streamproc run samples/sample.mp4 --events out/sample.jsonl --out-video out/sample.annotated.mp4 "$@"
echo "demo: detections in out/sample.jsonl, annotated video in out/sample.annotated.mp4"
