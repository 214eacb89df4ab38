"""Every target of the performance issue in one run, ending with one table: value, target, pass/fail.

    python benchmarks/run_all.py                      # about 15 min: includes the 10-minute memory run
    python benchmarks/run_all.py --memory-seconds 120 # shorter memory run (say so when you report it)

1. file throughput, 720p30 and 1080p30: ``bench_throughput.py`` (c/b, every frame, same boxes)
2. live capacity, 720p30 cameras: ``bench_live.py`` (largest N with no drops and p99 < 200 ms)
3. memory: peak RSS at N = 12 (from 2) and RSS growth over a long N = 12 run (``bench_live.py --memory``)
4. start-up: ``bench_startup.py`` (launch to first detection, TensorFlow not imported)
5. annotated output: ``bench_throughput.py`` variants c and d against the encoder alone

Each benchmark prints its own details first; ``--out`` also writes every number as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import bench_live
import bench_startup
import bench_throughput  # puts this checkout on sys.path
from table import Row, all_ok, print_rows

log = logging.getLogger("run_all")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="throughput passes per variant (default 3)")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="length of each capacity trial")
    parser.add_argument("--memory-seconds", type=float, default=600.0, help="length of the memory run")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--cache-dir", type=Path, default=bench_throughput.DEFAULT_CACHE_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("streamproc").setLevel(logging.WARNING)

    log.info("1, 5: file throughput and annotated output")
    throughput = bench_throughput.benchmark(
        list(bench_throughput.RESOLUTIONS), 10.0, args.repeats, args.cache_dir
    )
    sys.stderr.flush()
    bench_throughput.print_report(throughput)
    clip = bench_throughput.clip_720p(args.cache_dir)

    log.info("2, 3: live capacity, peak RSS")
    capacity, trials = bench_live.find_capacity(clip, args.live_seconds, bench_live.TARGET_SOURCES, step=4)
    bench_live.print_trials(trials)
    log.info("3: memory over %g s at N=%d", args.memory_seconds, bench_live.TARGET_SOURCES)
    memory = bench_live.run_trial(
        clip, bench_live.TARGET_SOURCES, args.memory_seconds, rss_interval=max(1.0, args.memory_seconds / 300)
    )
    log.info("4: start-up")
    startup = bench_startup.measure(clip, repeats=5)

    rows: list[Row] = [
        *bench_throughput.target_rows(throughput),
        *bench_live.capacity_rows(capacity, trials),
        *bench_live.memory_rows(memory),
        *startup,
    ]
    print()
    print_rows(rows, "Summary (targets from the performance issue; ratios against baselines of this run)")
    if args.out:
        results = {
            "throughput": bench_throughput.report_json(throughput),
            "capacity": {"largest_n": capacity, "trials": trials},
            "memory": memory,
            "summary": [dataclasses.asdict(row) for row in rows],
        }
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        log.info("wrote %s", args.out)
    return 0 if all_ok(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
