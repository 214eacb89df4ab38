"""Start-up: from launching ``streamproc run`` to the first detection written, TFLite-only config.

    python benchmarks/bench_startup.py [--repeats 5]

Each repeat starts a fresh ``python -m streamproc run CLIP --events OUT.jsonl`` (this checkout's
code: it runs from the repository root) and polls the events file every 2 ms for its first frame
record. One more run with ``-X importtime`` checks that TensorFlow was never imported: only Keras and
SavedModel models need it, and importing it takes seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import bench_throughput  # first: puts this checkout on sys.path
from table import Row, all_ok, print_rows

log = logging.getLogger("bench_startup")

LIMIT_S = 2.0


def command(clip: Path, events: Path, *python_options: str) -> list[str]:
    return [sys.executable, *python_options, "-m", "streamproc", "run", str(clip), "--events", str(events)]


def first_detection_seconds(clip: Path, events: Path, timeout: float = 60.0) -> float:
    """Seconds from spawning the process to the first frame record in ``events``."""
    events.unlink(missing_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command(clip, events), "--no-progress"],
        cwd=bench_throughput.REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < timeout:
            if events.exists() and _has_frame(events):
                return time.perf_counter() - started
            if process.poll() is not None and not _has_frame(events):
                raise RuntimeError(f"streamproc exited ({process.returncode}) before writing a detection")
            time.sleep(0.002)
        raise TimeoutError(f"no detection within {timeout} s")
    finally:
        process.wait()


def _has_frame(events: Path) -> bool:
    """Whether a whole frame record is in ``events`` (status records come first: the source's
    "streaming" line is written before any frame)."""
    with events.open(encoding="utf-8") as stream:
        return any(line.endswith("\n") and json.loads(line).get("type") == "frame" for line in stream)


def tensorflow_imported(clip: Path, events: Path) -> bool:
    """Whether a whole run imported any ``tensorflow`` module (from ``-X importtime``'s report)."""
    done = subprocess.run(
        [*command(clip, events, "-X", "importtime"), "--no-progress"],
        cwd=bench_throughput.REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    modules = (line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "import time:" in line)
    return any(module.split(".")[0] == "tensorflow" for module in modules)


def measure(clip: Path, repeats: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="streamproc-startup-") as workdir:
        events = Path(workdir) / "events.jsonl"
        first_detection_seconds(clip, events)  # warm-up: page cache for Python, libraries, model
        seconds = [first_detection_seconds(clip, events) for _ in range(repeats)]
        imported = tensorflow_imported(clip, events)
    median = statistics.median(seconds)
    log.info("launch to first detection: %s s", " ".join(f"{s:.2f}" for s in seconds))
    return [
        Row(
            "start-up: launch to first detection (s, median)",
            f"{median:.2f} (best {min(seconds):.2f})",
            f"< {LIMIT_S:g}",
            median < LIMIT_S,
        ),
        Row(
            "start-up: TensorFlow imported (TFLite-only config)",
            "yes" if imported else "no",
            "no",
            not imported,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed launches (default 5)")
    parser.add_argument("--cache-dir", type=Path, default=bench_throughput.DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows = measure(bench_throughput.clip_720p(args.cache_dir), args.repeats)
    print_rows(rows)
    return 0 if all_ok(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
