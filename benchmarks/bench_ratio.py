"""How close ``streamproc run`` comes to what the machine allows: whole-process fps against a limit
measured in the same run.

    limit = cores / (decode CPU per frame + bare BlazeFace invoke CPU per frame)
    ratio = streamproc's whole-process fps / limit

- decode CPU per frame: a separate process that decodes the clip with PyAV (FFmpeg frame and slice
  threads, every frame, no pixel conversion), launch to exit, CPU of the whole process (children's
  rusage) over the frame count;
- invoke CPU per frame: LiteRT with one thread on the short-range model, process CPU per invoke;
- streamproc: ``python -m streamproc run CLIP --events OUT --no-progress``, launch to exit, wall time;
  its CPU per frame and start-up wall and CPU time (the same command on a one-frame clip, 2 x repeats
  + 1 runs) are reported too.

Clips are 60 s H.264 at 720p30 and 1080p30 from ``samples/make_sample.py`` (cached). The three
measurements are interleaved within each repeat; the table shows medians.

Run: ``.venv/bin/python benchmarks/bench_ratio.py [--seconds 60] [--repeats 3] [--checkout DIR]``
(``--checkout`` measures another source tree, e.g. a ``git worktree`` of an older commit, with the
same interpreter: before/after comparisons in one run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench_throughput import DEFAULT_CACHE_DIR, ensure_sample, load_make_sample  # noqa: E402
from table import Row, print_rows  # noqa: E402

from streamproc.inference.models import blazeface_model_path  # noqa: E402

TARGET = 0.75
DECODE_SCRIPT = """
import sys, av
with av.open(sys.argv[1]) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    count = sum(1 for _ in container.decode(stream))
print(count)
"""


def child_run(command: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child and its threads, stdout) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def invoke_cpu_ms(iterations: int = 500) -> float:
    """Process CPU per bare LiteRT invoke of BlazeFace short, one thread."""
    interpreter = Interpreter(model_path=str(blazeface_model_path("short")), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    tensor = np.random.default_rng(0).uniform(-1, 1, detail["shape"]).astype(np.float32)
    for _ in range(20):  # warm up
        interpreter.set_tensor(detail["index"], tensor)
        interpreter.invoke()
    started = time.process_time()
    for _ in range(iterations):
        interpreter.set_tensor(detail["index"], tensor)
        interpreter.invoke()
    return (time.process_time() - started) * 1000.0 / iterations


class Trial:
    """One repeat's numbers for one clip."""

    def __init__(
        self, frames: int, decode_cpu: float, invoke_ms: float, run_wall: float, run_cpu: float
    ) -> None:
        cores = len(os.sched_getaffinity(0))
        self.decode_ms = decode_cpu * 1000.0 / frames
        self.invoke_ms = invoke_ms
        self.limit_fps = cores * 1000.0 / (self.decode_ms + invoke_ms)
        self.fps = frames / run_wall
        self.run_cpu_ms = run_cpu * 1000.0 / frames
        self.ratio = self.fps / self.limit_fps


def measure(clip: Path, frames: int, checkout: Path, repeats: int) -> list[Trial]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    trials = []
    with tempfile.TemporaryDirectory() as folder:
        events = Path(folder) / "events.jsonl"
        for _ in range(repeats):
            _, decode_cpu, counted = child_run(
                [sys.executable, "-c", DECODE_SCRIPT, str(clip)], checkout, env
            )
            if int(counted) != frames:
                raise SystemExit(f"decoded {counted.strip()} frames of {clip}, expected {frames}")
            invoke_ms = invoke_cpu_ms()
            events.unlink(missing_ok=True)
            command = [sys.executable, "-m", "streamproc", "run", str(clip), "--events", str(events)]
            wall, cpu, _ = child_run([*command, "--no-progress", "-q"], checkout, env)
            processed = sum(1 for line in events.open() if '"type":"frame"' in line)
            if processed != frames:
                raise SystemExit(f"streamproc processed {processed} of {frames} frames")
            trials.append(Trial(frames, decode_cpu, invoke_ms, wall, cpu))
    return trials


def start_up_seconds(checkout: Path, one_frame: Path, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of a one-frame run, launch to exit."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "streamproc", "run", str(one_frame), "--events", f"{folder}/e.jsonl"]
        runs = [child_run([*command, "--no-progress", "-q"], checkout, env) for _ in range(repeats)]
    return statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs)


def one_frame_clip(source: Path, folder: Path) -> Path:
    import av

    path = folder / "one-frame.mp4"
    with av.open(str(source)) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        frame = next(inp.decode(video=0))
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def rows_for(name: str, trials: list[Trial]) -> list[Row]:
    def median(attribute: str) -> float:
        return statistics.median(getattr(trial, attribute) for trial in trials)

    ratio = median("ratio")
    return [
        Row(f"{name} decode CPU per frame (ms)", f"{median('decode_ms'):.2f}"),
        Row(f"{name} bare invoke CPU per frame (ms)", f"{median('invoke_ms'):.2f}"),
        Row(f"{name} limit (fps)", f"{median('limit_fps'):.0f}"),
        Row(f"{name} streamproc whole process (fps)", f"{median('fps'):.0f}"),
        Row(f"{name} streamproc CPU per frame (ms)", f"{median('run_cpu_ms'):.2f}"),
        Row(f"{name} ratio to the limit", f"{ratio:.2f}", f">= {TARGET}", ratio >= TARGET),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolutions", nargs="+", default=["720p", "1080p"])
    parser.add_argument("--checkout", type=Path, default=REPO_ROOT, help="source tree to measure")
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    make_sample = load_make_sample()
    rows: list[Row] = []
    results: dict[str, dict[str, float]] = {}
    for name in args.resolutions:
        sample = ensure_sample(make_sample, DEFAULT_CACHE_DIR, name, args.seconds)
        trials = measure(sample.path, sample.frames, args.checkout.resolve(), args.repeats)
        rows += rows_for(name, trials)
        results[name] = {key: statistics.median(getattr(t, key) for t in trials) for key in vars(trials[0])}
    with tempfile.TemporaryDirectory() as folder:
        clip = one_frame_clip(sample.path, Path(folder))
        startup, startup_cpu = start_up_seconds(args.checkout.resolve(), clip, 2 * args.repeats + 1)
    rows.append(Row("start-up: one-frame run, launch to exit (s)", f"{startup:.2f}"))
    rows.append(Row("start-up CPU: one-frame run (s)", f"{startup_cpu:.2f}"))
    print_rows(rows, f"streamproc at {args.checkout.resolve()} ({len(os.sched_getaffinity(0))} cores)")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "checkout": str(args.checkout),
                    "startup_s": startup,
                    "startup_cpu_s": startup_cpu,
                    **results,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
