"""Distributed runs on Ray: scaling over 8 files, and what ``--workers 1`` costs against a plain run.

Eight inputs (links to the benchmark's 10 s 720p30 clip, 300 frames each) go through the command
line as a user would run them, each variant in its own process, variants interleaved over the
repeats:

- ``plain``: ``streamproc run`` of all 8 files in one pipeline (one inference loop, 8 decoders);
- ``workers N``: ``streamproc run --workers N``, one Ray task per file on a local Ray instance.

Two numbers per run: **end-to-end** (launch to exit, Ray's start and stop included) and **job**
(the run's own "processed ... in S s" line: the plain pipeline's processing, or the distributed
job from first task submitted to last file done). Efficiency = fps with N workers / (N x fps with 1).

    python benchmarks/bench_ray.py [--workers 1 2] [--repeats 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_throughput  # first: puts this checkout on sys.path
from table import Row, print_rows

log = logging.getLogger("bench_ray")

FILES = 8
FRAMES_PER_FILE = 300
SUMMARY = re.compile(r"processed (\d+) frames.* in ([\d.]+) s")


def run_once(inputs: list[Path], out: Path, workers: int | None) -> dict[str, float]:
    """One CLI run; its end-to-end and job fps (asserting every frame was processed)."""
    flags = ["--workers", str(workers)] if workers else []
    command = [sys.executable, "-m", "streamproc", "run", *map(str, inputs), "--no-progress"]
    command += ["--events", str(out / "{source}.jsonl"), *flags]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=bench_throughput.REPO_ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"run failed ({result.returncode}): {result.stderr[-2000:]}")
    found = SUMMARY.findall(result.stderr)
    assert found, result.stderr[-2000:]
    frames, job_seconds = int(found[-1][0]), float(found[-1][1])
    assert frames == FILES * FRAMES_PER_FILE, f"{frames} frames processed"
    return {"end_to_end_fps": frames / seconds, "job_fps": frames / job_seconds, "seconds": seconds}


def measure(worker_counts: list[int], repeats: int) -> dict[str, list[dict[str, float]]]:
    clip = bench_throughput.clip_720p()
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as folder:
        inputs = []
        for number in range(FILES):
            link = Path(folder) / f"clip{number}.mp4"
            os.symlink(clip, link)
            inputs.append(link)
        for repeat in range(repeats):
            for workers in [None, *worker_counts]:
                name = f"workers {workers}" if workers else "plain"
                out = Path(folder) / f"out-{repeat}-{name.replace(' ', '')}"
                runs.setdefault(name, []).append(run_once(inputs, out, workers))
                log.info("%s, repeat %d: %s", name, repeat + 1, runs[name][-1])
    return runs


def summarize(runs: dict[str, list[dict[str, float]]], worker_counts: list[int]) -> dict[str, Any]:
    median = {
        name: {key: statistics.median(run[key] for run in found) for key in found[0]}
        for name, found in runs.items()
    }
    one = median["workers 1"]
    for workers in worker_counts:
        numbers = median[f"workers {workers}"]
        for kind in ("end_to_end", "job"):
            numbers[f"{kind}_efficiency"] = numbers[f"{kind}_fps"] / (workers * one[f"{kind}_fps"])
    plain = median["plain"]
    median["overhead_workers_1"] = {
        kind: 1.0 - one[f"{kind}_fps"] / plain[f"{kind}_fps"] for kind in ("end_to_end", "job")
    }
    return median


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (1 first)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved passes over the variants")
    parser.add_argument("--out", type=Path, help="write every number as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    counts = sorted(set([1, *args.workers]))
    runs = measure(counts, args.repeats)
    median = summarize(runs, counts)
    rows = [Row("plain run, fps end-to-end / job", _pair(median["plain"]))]
    for workers in counts:
        numbers = median[f"workers {workers}"]
        rows.append(Row(f"--workers {workers}, fps end-to-end / job", _pair(numbers)))
        efficiency = f"{numbers['end_to_end_efficiency']:.2f} / {numbers['job_efficiency']:.2f}"
        rows.append(Row(f"--workers {workers}, efficiency end-to-end / job", efficiency))
    overhead = median["overhead_workers_1"]
    lost = f"{overhead['end_to_end']:.0%} / {overhead['job']:.0%}"
    rows.append(Row("--workers 1 vs plain, fps lost end-to-end / job", lost))
    title = f"{FILES} files x {FRAMES_PER_FILE} frames of 720p30, {os.cpu_count()} CPUs"
    title += f", median of {args.repeats}"
    print_rows(rows, title)
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "median": median}, indent=2) + "\n")
    return 0


def _pair(numbers: dict[str, float]) -> str:
    return f"{numbers['end_to_end_fps']:.0f} / {numbers['job_fps']:.0f}"


if __name__ == "__main__":
    sys.exit(main())
