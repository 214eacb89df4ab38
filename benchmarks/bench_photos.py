"""Distributed photo collections: a plain run against ``--workers 1`` and ``--workers 2``, and the cost
of one more shard.

The collection is made from the shared photos (``../shared/images``) at mixed sizes (0.3x to 1.5x,
JPEG), ``--photos`` of them (10,000) in one folder. Each variant is a ``streamproc run FOLDER
--events ... --no-progress`` in its own process, variants interleaved over the repeats:

- ``plain``: one pipeline over the folder;
- ``workers N``: the folder in shards of ``photos_per_shard`` (200), one Ray task each, on a
  local Ray started by the run;
- ``workers 1, small shards``: the same with ``--small-shard`` photos per shard (50): four times the
  shards; the difference in wall (and CPU) time over the difference in shards is the **overhead per
  shard** (on a shared machine only the CPU difference is steady enough to read).

Per run: wall time launch to exit (Ray's start and stop included) and CPU time of the run's process
tree: the run and every descendant (Ray's GCS, raylet, workers), read from /proc every 0.2 s, each
process's last reading counted (``getrusage`` misses Ray's workers: nobody reaps them). Every run's
records must equal the plain run's (wall times aside).

    python benchmarks/bench_photos.py [--photos 10000] [--repeats 1] [--out FILE]
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
import threading
import time
from pathlib import Path
from typing import Any

import cv2
from bench_throughput import REPO_ROOT  # first: puts this checkout on sys.path
from table import Row, print_rows

log = logging.getLogger("bench_photos")

SCALES = (0.3, 0.5, 0.75, 1.0, 1.25, 1.5)
SUMMARY = re.compile(r"processed (\d+) frames")
SHARED = Path(os.environ.get("STREAMPROC_SHARED_DIR", REPO_ROOT.parent / "shared"))


def make_photos(folder: Path, count: int) -> None:
    """``count`` JPEGs: every shared photo at every scale, in turn."""
    variants = []
    for original in sorted((SHARED / "images").iterdir()):
        picture = cv2.imread(str(original))
        for scale in SCALES:
            ok, data = cv2.imencode(".jpg", cv2.resize(picture, None, fx=scale, fy=scale))
            assert ok
            variants.append(data.tobytes())
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{number:06d}.jpg").write_bytes(variants[number % len(variants)])


def records(path: Path) -> list[dict[str, Any]]:
    """The records without wall times, status lines last and sorted (another thread writes them:
    their place among the frames varies from run to run); the closing summary's counts without the
    sinks' names (they name each run's own output folder)."""
    found = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("wall_time", None)
        if record["type"] == "summary":
            record["sinks"] = sorted(record["sinks"].values(), key=json.dumps)
        found.append(record)
    status = sorted((r for r in found if r["type"] == "status"), key=lambda r: json.dumps(r, sort_keys=True))
    return [r for r in found if r["type"] != "status"] + status


class TreeCpu(threading.Thread):
    """CPU seconds of a process and its descendants, from /proc, sampled until ``done`` is set."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.done = root, threading.Event()
        self.seen: dict[int, float] = {}  # pid -> its last reading

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.sample()

    def sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        processes: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # not a process, or gone meanwhile
                continue
            processes[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        tree, grew = {self.root}, True
        while grew:
            found = {pid for pid, (parent, _) in processes.items() if parent in tree} - tree
            tree, grew = tree | found, bool(found)
        for pid in tree & processes.keys():
            self.seen[pid] = processes[pid][1]

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def run_once(photos: Path, out: Path, workers: int | None, per_shard: int | None) -> dict[str, float]:
    """One CLI run: wall and CPU seconds; its records checked against the plain run's."""
    flags = ["--workers", str(workers)] if workers else []
    command = [sys.executable, "-m", "streamproc", "run", str(photos), "--no-progress"]
    command += ["--events", str(out / "{source}.jsonl"), *flags]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0"}
    if per_shard:
        env["STREAMPROC_DISTRIBUTED__PHOTOS_PER_SHARD"] = str(per_shard)
    started = time.perf_counter()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env
    ) as process:
        cpu = TreeCpu(process.pid)
        cpu.start()
        _, stderr = process.communicate()
        wall = time.perf_counter() - started
        cpu.done.set()
        cpu.join()
    if process.returncode != 0:
        raise SystemExit(f"run failed ({process.returncode}): {stderr[-2000:]}")
    frames = int(SUMMARY.findall(stderr)[-1])
    return {"wall_s": wall, "cpu_s": cpu.seconds, "frames": frames}


def measure(count: int, repeats: int, small: int, folder: Path) -> dict[str, list[dict[str, float]]]:
    photos = folder / "photos"
    if not photos.is_dir() or len(list(photos.iterdir())) != count:
        make_photos(photos, count)
    variants: list[tuple[str, int | None, int | None]] = [
        ("plain", None, None),
        ("workers 1", 1, None),
        ("workers 2", 2, None),
        (f"workers 1, {small} per shard", 1, small),
    ]
    runs: dict[str, list[dict[str, float]]] = {}
    for repeat in range(repeats):
        for name, workers, per_shard in variants:
            out = folder / f"out-{repeat}-{len(runs.get(name, []))}-{name.replace(' ', '').replace(',', '')}"
            run = run_once(photos, out, workers, per_shard)
            assert run["frames"] == count, run
            if name != "plain":
                plain_out = folder / f"out-{repeat}-0-plain" / "photos.jsonl"
                assert records(out / "photos.jsonl") == records(plain_out), f"{name}: records differ"
            runs.setdefault(name, []).append(run)
            log.info("%s, repeat %d: %s (load %.1f)", name, repeat + 1, run, os.getloadavg()[0])
    return runs


def summarize(
    runs: dict[str, list[dict[str, float]]], count: int, small: int, default: int
) -> dict[str, Any]:
    median = {
        name: {key: statistics.median(r[key] for r in found) for key in found[0]}
        for name, found in runs.items()
    }
    shards = (count // small, count // default)
    more = median[f"workers 1, {small} per shard"]
    return {
        "median": median,
        "workers_2_vs_plain_wall": median["workers 2"]["wall_s"] / median["plain"]["wall_s"],
        "overhead_per_shard_s": (more["wall_s"] - median["workers 1"]["wall_s"]) / (shards[0] - shards[1]),
        "overhead_per_shard_cpu_s": (more["cpu_s"] - median["workers 1"]["cpu_s"]) / (shards[0] - shards[1]),
        "shards": {"default": shards[1], "small": shards[0]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--small-shard", type=int, default=50)
    parser.add_argument(
        "--folder", type=Path, help="keep the photos and outputs here (default: a temporary one)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from streamproc.config.settings import DistributedSettings

    default = DistributedSettings().photos_per_shard
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as temporary:
        runs = measure(args.photos, args.repeats, args.small_shard, args.folder or Path(temporary))
    summary = summarize(runs, args.photos, args.small_shard, default)
    rows = [
        Row(f"{name}: wall s / CPU s", f"{m['wall_s']:.1f} / {m['cpu_s']:.1f}")
        for name, m in summary["median"].items()
    ]
    ratio = summary["workers_2_vs_plain_wall"]
    rows.append(Row("--workers 2 wall / plain wall", f"{ratio:.2f}", "<= 1.2", ratio <= 1.2))
    rows.append(Row("overhead per shard, wall (s)", f"{summary['overhead_per_shard_s']:.3f}"))
    rows.append(Row("overhead per shard, CPU (s)", f"{summary['overhead_per_shard_cpu_s']:.4f}"))
    print_rows(rows)
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, **summary}, indent=2) + "\n")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
