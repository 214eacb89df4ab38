"""Cost of making BlazeFace's input from a decoded video frame, per frame, at 720p and 1080p.

Three ways, on the same decoded yuv420p frames of generated H.264 clips (noise over a test
pattern, so no pixel repeats), interleaved within each repeat:

- ``before``: what streamproc did before issue 12: swscale scales and converts the frame to the
  letterboxed size in one call (AREA), then the picture is padded and normalised. Not MediaPipe's.
- ``full``: MediaPipe's input, exactly: the whole frame converted to RGB (``to_ndarray("rgb24")``,
  what MediaPipe is fed), then the OpenCV 3.4 warp and value table.
- ``cut``: the same tensor, bit for bit, with only the rows and columns the warp reads converted
  (what :class:`~streamproc.inference.blazeface.BlazeFaceDetector` does).

Reports the best and the median of the per-repeat means in milliseconds (the host is shared: the
best is the cost, the median shows the noise). Run:
``.venv/bin/python benchmarks/bench_preprocess.py [--frames 30] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed one

from streamproc.core.pictures import reformat
from streamproc.inference.frame_input import full_rgb, plan_rgb
from streamproc.inference.image_to_tensor import tensor_values, warp_plan

log = logging.getLogger("bench_preprocess")
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def make_clip(path: Path, width: int, height: int, frames: int) -> list[av.VideoFrame]:
    """Encode ``frames`` noisy frames to H.264 and decode them back (the decoder's own frames)."""
    rng = np.random.default_rng(12)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            noise = rng.normal(0, 30, (height, width, 3)).astype(np.float32)
            rgb = np.clip(ramp + noise, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def before(frame: av.VideoFrame, size: int) -> np.ndarray:
    scale = min(size / frame.width, size / frame.height)
    width, height = round(frame.width * scale), round(frame.height * scale)
    scaled = reformat(frame, width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
    tensor = np.full((1, size, size, 3), -1.0, np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    view = tensor[0, top : top + height, left : left + width]
    np.multiply(scaled, np.float32(2.0 / 255.0), out=view, dtype=np.float32)
    view -= np.float32(1.0)
    return tensor


def full(frame: av.VideoFrame, size: int) -> np.ndarray:
    plan = warp_plan(frame.width, frame.height, size)
    return tensor_values(plan.warp(full_rgb(frame)))[None]


def cut(frame: av.VideoFrame, size: int) -> np.ndarray:
    plan = warp_plan(frame.width, frame.height, size)
    return tensor_values(plan.warp_sampled(plan_rgb(frame, plan)))[None]


WAYS: dict[str, Callable[[av.VideoFrame, int], np.ndarray]] = {"before": before, "full": full, "cut": cut}


def measure(frames: list[av.VideoFrame], size: int, repeats: int) -> dict[str, list[float]]:
    for frame in frames:  # plans, swscale contexts, and the exactness of cut against full
        assert np.array_equal(full(frame, size), cut(frame, size)), "cut differs from full"
        before(frame, size)
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(repeats):
        for name, way in WAYS.items():
            started = time.perf_counter()
            for frame in frames:
                way(frame, size)
            times[name].append((time.perf_counter() - started) / len(frames) * 1000.0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as folder:
        for label, (width, height) in SIZES.items():
            frames = make_clip(Path(folder) / f"{label}.mp4", width, height, args.frames)
            for size in (128, 192):
                times = measure(frames, size, args.repeats)
                row = ", ".join(
                    f"{name} {min(ms):.3f} ({statistics.median(ms):.3f})" for name, ms in times.items()
                )
                log.info("%s -> %d: ms per frame, best (median): %s", label, size, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
