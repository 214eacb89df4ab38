"""Live capacity and memory: N cameras of 720p30 H.264, BlazeFace on every frame of every camera.

Each camera is the benchmark's 720p30 clip replayed as a live source (``realtime: true, loop: true``):
frames are delivered at 30 fps on the wall clock, into drop-oldest buffers, exactly as a camera's
would be. A frame's capture time is the moment it was due, so a decoder that falls behind shows up
as latency, not as a slower camera. Every trial runs in its own process, so its peak RSS is its own.

    python benchmarks/bench_live.py                      # capacity: the largest N that keeps up
    python benchmarks/bench_live.py --memory --sources 12 --seconds 600    # flat memory over 10 min

A trial passes when no frame was dropped (in a source's buffer or a sink's queue), every camera
delivered its frames in real time, and the p99 capture-to-sink latency is under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bench_throughput  # first: puts this checkout on sys.path
import numpy as np
from table import Row, all_ok, print_rows

from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings
from streamproc.core.frames import FrameResult
from streamproc.pipeline.build import build_pipeline

log = logging.getLogger("bench_live")

LATENCY_LIMIT_MS = 200.0
TARGET_SOURCES = 12
PEAK_RSS_LIMIT_MB = 600.0
RSS_GROWTH_LIMIT = 0.05
FPS = bench_throughput.FPS


class LatencyHistogram:
    """Capture-to-sink latency in 1 ms bins: constant memory however long the run."""

    def __init__(self, limit_ms: int = 10_000) -> None:
        self._counts = np.zeros(limit_ms + 1, np.int64)

    def add(self, ms: float) -> None:
        self._counts[min(int(ms), len(self._counts) - 1)] += 1

    def percentile(self, fraction: float) -> float:
        """Upper edge of the bin holding the ``fraction`` quantile (ms)."""
        total = int(self._counts.sum())
        if not total:
            return float("nan")
        return float(np.searchsorted(np.cumsum(self._counts), fraction * total) + 1)


class RssSampler(threading.Thread):
    """Resident set size of this process, every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - started, rss_mb()))
            if self._done.wait(self.interval):
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident set (``VmHWM``: its peak) in MB. Not ``ru_maxrss``: Linux carries that
    over ``exec`` from the forked parent, so a trial started by a big process would report its size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def growth(samples: Sequence[tuple[float, float]]) -> float:
    """RSS growth from the first tenth of the run (after start-up) to the last tenth."""
    values = [mb for _, mb in samples[1:]] or [mb for _, mb in samples]
    tenth = max(1, len(values) // 10)
    return max(values[-tenth:]) / max(values[:tenth]) - 1.0


def trial(clip: Path, sources: int, seconds: float, rss_interval: float) -> dict[str, Any]:
    """One run of ``sources`` replayed cameras for ``seconds``, in this process."""
    with tempfile.TemporaryDirectory(prefix="streamproc-live-") as workdir:
        settings = Settings(
            sources=[
                SourceSettings(url=str(clip), id=f"cam{i}", realtime=True, loop=True) for i in range(sources)
            ],
            sinks=[JsonlSinkSettings(type="jsonl", path=Path(workdir) / "events.jsonl")],
            duration=seconds,
            progress=False,
        )
        pipeline = build_pipeline(settings)
        latency = LatencyHistogram()

        def on_result(result: FrameResult) -> None:
            latency.add((time.time() - result.frame.wall_time) * 1000.0)

        sampler = RssSampler(rss_interval)
        sampler.start()
        cpu = time.process_time()
        report = pipeline.run(progress=on_result)
        cpu = time.process_time() - cpu
        sampler.stop()
        sink_drops = sum(sink["dropped"] for sink in pipeline.sinks_snapshot().values())
    expected = sources * round(report.seconds * FPS)
    decoded = sum(source.frames_decoded for source in report.sources)
    return {
        "sources": sources,
        "seconds": round(report.seconds, 2),
        "frames_processed": report.frames_processed,
        "frames_due": expected,
        "behind_frames": max(0, expected - decoded),
        "dropped": sum(source.dropped for source in report.sources) + sink_drops,
        "p50_ms": latency.percentile(0.50),
        "p99_ms": latency.percentile(0.99),
        "cpu_ms_per_frame": round(cpu * 1000.0 / max(report.frames_processed, 1), 3),
        "peak_rss_mb": round(rss_mb("VmHWM"), 1),
        "rss_growth": round(growth(sampler.samples), 4),
        "rss_mb": [(round(t, 1), round(mb, 1)) for t, mb in sampler.samples],
        "problems": report.problems(),
    }


def passed(result: dict[str, Any]) -> bool:
    """Zero drops, p99 under the limit, and at the end no camera behind real time by more than the
    latency limit (frames due but not yet decoded have no latency to measure)."""
    allowed_behind = result["sources"] * FPS * LATENCY_LIMIT_MS / 1000.0
    return (
        result["dropped"] == 0
        and result["behind_frames"] <= allowed_behind
        and result["p99_ms"] < LATENCY_LIMIT_MS
        and not result["problems"]
    )


def run_trial(clip: Path, sources: int, seconds: float, rss_interval: float = 1.0) -> dict[str, Any]:
    """:func:`trial` in a fresh process, so peak RSS and threads belong to this trial alone."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--trial",
        "--clip",
        str(clip),
        "--sources",
        str(sources),
        "--seconds",
        str(seconds),
        "--rss-interval",
        str(rss_interval),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"trial with {sources} sources failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log.info(
        "N=%2d: %s  dropped %d, behind %d, p99 %.0f ms, peak RSS %.0f MB, %.2f CPU ms/frame",
        sources,
        "pass" if passed(result) else "FAIL",
        result["dropped"],
        result["behind_frames"],
        result["p99_ms"],
        result["peak_rss_mb"],
        result["cpu_ms_per_frame"],
    )
    return result


def find_capacity(clip: Path, seconds: float, start: int, step: int) -> tuple[int, list[dict[str, Any]]]:
    """The largest N that passes: steps of ``step`` from ``start`` up (or down) to the first change,
    then halving the gap between the last pass and the first failure."""
    results: dict[int, dict[str, Any]] = {}

    def ok(n: int) -> bool:
        if n not in results:
            results[n] = run_trial(clip, n, seconds)
        return passed(results[n])

    if ok(start):
        good, bad = start, start + step
        while ok(bad):
            good, bad = bad, bad + step
    else:
        good, bad = max(0, start - step), start
        while good > 0 and not ok(good):
            good, bad = max(0, good - step), good
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if ok(middle) else (good, middle)
    return good, [results[n] for n in sorted(results)]


def capacity_rows(capacity: int, results: Sequence[dict[str, Any]]) -> list[Row]:
    by_n = {result["sources"]: result for result in results}
    rows = [
        Row(
            "live capacity: largest N (720p30)",
            str(capacity),
            f">= {TARGET_SOURCES}",
            capacity >= TARGET_SOURCES,
        )
    ]
    at_target = by_n.get(TARGET_SOURCES)
    if at_target is not None:
        rows.append(
            Row(
                f"peak RSS at N={TARGET_SOURCES} (MB)",
                f"{at_target['peak_rss_mb']:.0f}",
                f"< {PEAK_RSS_LIMIT_MB:.0f}",
                at_target["peak_rss_mb"] < PEAK_RSS_LIMIT_MB,
            )
        )
    return rows


def memory_rows(result: dict[str, Any]) -> list[Row]:
    n, minutes = result["sources"], result["seconds"] / 60
    return [
        Row(
            f"peak RSS, N={n}, {minutes:.1f} min (MB)",
            f"{result['peak_rss_mb']:.0f}",
            f"< {PEAK_RSS_LIMIT_MB:.0f}",
            result["peak_rss_mb"] < PEAK_RSS_LIMIT_MB,
        ),
        Row(
            f"RSS growth, N={n}, {minutes:.1f} min",
            f"{result['rss_growth']:+.1%}",
            f"<= {RSS_GROWTH_LIMIT:.0%}",
            result["rss_growth"] <= RSS_GROWTH_LIMIT,
        ),
        Row(
            "  same run: drops, p99 latency (ms)",
            f"{result['dropped']}, {result['p99_ms']:.0f}",
            f"0, < {LATENCY_LIMIT_MS:.0f}",
            passed(result),
        ),
    ]


def print_trials(results: Sequence[dict[str, Any]]) -> None:
    columns = ("frames", "dropped", "behind", "p50 ms", "p99 ms", "RSS MB")
    print(f"{'N':>3} " + " ".join(f"{name:>8}" for name in columns) + "  result")
    for r in results:
        print(
            f"{r['sources']:>3} {r['frames_processed']:>8} {r['dropped']:>8} {r['behind_frames']:>8} "
            f"{r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f} {r['peak_rss_mb']:>8.0f}  "
            + ("pass" if passed(r) else "FAIL")
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="length of each trial (default 20; --memory: 600)")
    parser.add_argument("--start", type=int, default=TARGET_SOURCES, help="first N tried (default 12)")
    parser.add_argument("--step", type=int, default=4, help="N steps before halving (default 4)")
    parser.add_argument("--memory", action="store_true", help="one long run at --sources: peak and growth")
    parser.add_argument("--sources", type=int, default=TARGET_SOURCES, help="N for --memory (default 12)")
    parser.add_argument("--rss-interval", type=float, default=1.0, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--cache-dir", type=Path, default=bench_throughput.DEFAULT_CACHE_DIR, help="generated clips"
    )
    parser.add_argument("--trial", action="store_true", help=argparse.SUPPRESS)  # one run, JSON out
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("streamproc").setLevel(logging.WARNING)
    if args.trial:
        print(json.dumps(trial(args.clip, args.sources, args.seconds, args.rss_interval)))
        return 0
    clip = bench_throughput.clip_720p(args.cache_dir)
    if args.memory:
        seconds = args.seconds or 600.0
        result = run_trial(clip, args.sources, seconds, rss_interval=max(args.rss_interval, seconds / 300))
        rows, output = memory_rows(result), {"memory": result}
    else:
        capacity, results = find_capacity(clip, args.seconds or 20.0, args.start, args.step)
        print_trials(results)
        rows, output = capacity_rows(capacity, results), {"capacity": capacity, "trials": results}
    print()
    print_rows(rows)
    if args.out:
        args.out.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    return 0 if all_ok(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
