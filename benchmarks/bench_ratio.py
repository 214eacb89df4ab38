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

Run: ``.venv/bin/python benchmarks/bench_ratio.py [--seconds 60] [--repeats 3] [--checkout DIR]
[--baseline DIR]`` (``--checkout`` measures another source tree with the same interpreter;
``--baseline`` runs a second tree's streamproc beside it in every repeat, in alternating order,
against the same limit: a before/after comparison in one run).

On a shared machine wall time follows the other jobs' load; the CPU ratio, ``(decode + invoke CPU) /
streamproc CPU per frame``, is the ratio the process would reach if its work kept both cores busy,
and moves much less with the load (it says nothing about waiting, so it is an upper bound).
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
    """One repeat's numbers for one clip and one checkout."""

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
        self.cpu_ratio = (self.decode_ms + invoke_ms) / self.run_cpu_ms


def streamproc_run(clip: Path, frames: int, checkout: Path, events: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``streamproc run CLIP --events OUT`` from ``checkout``, launch to exit."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    events.unlink(missing_ok=True)
    command = [sys.executable, "-m", "streamproc", "run", str(clip), "--events", str(events)]
    wall, cpu, _ = child_run([*command, "--no-progress", "-q"], checkout, env)
    processed = sum(1 for line in events.open() if '"type":"frame"' in line)
    if processed != frames:
        raise SystemExit(f"streamproc at {checkout} processed {processed} of {frames} frames")
    return wall, cpu


def measure(clip: Path, frames: int, checkouts: Sequence[Path], repeats: int) -> list[list[Trial]]:
    """Per checkout, one Trial per repeat; each repeat measures the limit once, then runs every
    checkout (in turn: the order alternates between repeats)."""
    trials: list[list[Trial]] = [[] for _ in checkouts]
    env = {**os.environ, "PYTHONPATH": str(checkouts[0])}
    with tempfile.TemporaryDirectory() as folder:
        events = Path(folder) / "events.jsonl"
        for repeat in range(repeats):
            _, decode_cpu, counted = child_run(
                [sys.executable, "-c", DECODE_SCRIPT, str(clip)], checkouts[0], env
            )
            if int(counted) != frames:
                raise SystemExit(f"decoded {counted.strip()} frames of {clip}, expected {frames}")
            invoke_ms = invoke_cpu_ms()
            order = list(range(len(checkouts)))
            for index in order if repeat % 2 == 0 else order[::-1]:
                wall, cpu = streamproc_run(clip, frames, checkouts[index], events)
                trials[index].append(Trial(frames, decode_cpu, invoke_ms, wall, cpu))
    return trials


def start_up_seconds(checkouts: Sequence[Path], one_frame: Path, repeats: int) -> list[tuple[float, float]]:
    """Per checkout, median wall and CPU seconds of a one-frame run, launch to exit (interleaved)."""
    runs: list[list[tuple[float, float, str]]] = [[] for _ in checkouts]
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "streamproc", "run", str(one_frame), "--events", f"{folder}/e.jsonl"]
        for _ in range(repeats):
            for index, tree in enumerate(checkouts):
                env = {**os.environ, "PYTHONPATH": str(tree)}
                runs[index].append(child_run([*command, "--no-progress", "-q"], tree, env))
    return [
        (statistics.median(r[0] for r in found), statistics.median(r[1] for r in found)) for found in runs
    ]


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


def median(trials: list[Trial], attribute: str) -> float:
    return statistics.median(getattr(trial, attribute) for trial in trials)


def rows_for(name: str, trials: list[list[Trial]]) -> list[Row]:
    """The limit (the first checkout's trials: every checkout shares it), then per checkout."""

    def each(attribute: str, digits: int) -> str:
        return " / ".join(f"{median(found, attribute):.{digits}f}" for found in trials)

    ratios = [median(found, "ratio") for found in trials]
    return [
        Row(f"{name} decode CPU per frame (ms)", f"{median(trials[0], 'decode_ms'):.2f}"),
        Row(f"{name} bare invoke CPU per frame (ms)", f"{median(trials[0], 'invoke_ms'):.2f}"),
        Row(f"{name} limit (fps)", f"{median(trials[0], 'limit_fps'):.0f}"),
        Row(f"{name} streamproc whole process (fps)", each("fps", 0)),
        Row(f"{name} streamproc CPU per frame (ms)", each("run_cpu_ms", 2)),
        Row(f"{name} CPU ratio (decode + invoke) / streamproc", each("cpu_ratio", 2)),
        Row(
            f"{name} ratio to the limit",
            " / ".join(f"{r:.2f}" for r in ratios),
            f">= {TARGET}",
            ratios[0] >= TARGET,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolutions", nargs="+", default=["720p", "1080p"])
    parser.add_argument("--checkout", type=Path, default=REPO_ROOT, help="source tree to measure")
    parser.add_argument("--baseline", type=Path, help="a second source tree, run beside it in every repeat")
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    checkouts = [args.checkout.resolve()] + ([args.baseline.resolve()] if args.baseline else [])
    make_sample = load_make_sample()
    rows: list[Row] = []
    results: dict[str, dict[str, dict[str, float]]] = {str(tree): {} for tree in checkouts}
    for name in args.resolutions:
        sample = ensure_sample(make_sample, DEFAULT_CACHE_DIR, name, args.seconds)
        trials = measure(sample.path, sample.frames, checkouts, args.repeats)
        rows += rows_for(name, trials)
        for tree, found in zip(checkouts, trials, strict=True):
            results[str(tree)][name] = {key: median(found, key) for key in vars(found[0])}
    with tempfile.TemporaryDirectory() as folder:
        clip = one_frame_clip(sample.path, Path(folder))
        startups = start_up_seconds(checkouts, clip, 2 * args.repeats + 1)
    rows.append(
        Row("start-up: one-frame run, launch to exit (s)", " / ".join(f"{s[0]:.2f}" for s in startups))
    )
    rows.append(Row("start-up CPU: one-frame run (s)", " / ".join(f"{s[1]:.2f}" for s in startups)))
    for tree, (startup, startup_cpu) in zip(checkouts, startups, strict=True):
        results[str(tree)]["start_up"] = {"wall_s": startup, "cpu_s": startup_cpu}
    names = " / ".join(str(tree) for tree in checkouts)
    print_rows(rows, f"streamproc at {names} ({len(os.sched_getaffinity(0))} cores)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
