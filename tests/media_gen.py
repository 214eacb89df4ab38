"""Hostile media for the safety tests, generated on the spot: variable frame rate, damaged packets,
a rotation in the display matrix, odd and huge sizes, and streams fed through a pipe.

Every video here is H.264 in MP4 (as phones and cameras write it); frames show a moving bright
square over a grey ramp, so that any frame can be told from its neighbours by eye or by numbers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _pictures(width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """RGB frames: a horizontal grey ramp with a white square moving left to right."""
    ramp = np.tile(np.linspace(40, 200, width, dtype=np.uint8), (height, 1))
    base = np.repeat(ramp[:, :, None], 3, axis=2)
    side = max(2, min(width, height) // 8)
    for index in range(count):
        picture = base.copy()
        left = (index * max(1, (width - side) // max(1, count))) % max(1, width - side)
        picture[height // 4 : height // 4 + side, left : left + side] = 255
        yield picture


def write_video(
    path: Path,
    pts: Sequence[int],
    time_base: Fraction = Fraction(1, 1000),
    size: tuple[int, int] = (320, 240),
    rotation: int = 0,
    pictures: Iterable[np.ndarray] | None = None,
    preset: str = "veryfast",
) -> Path:
    """An H.264 MP4 (faststart) with one frame per entry of ``pts`` (in ``time_base``) of ``size``
    (w, h), odd sizes included (encoded as 4:4:4, which allows them). ``pictures``: RGB frames to
    encode (default: the moving square). ``rotation``: counter-clockwise degrees in the display
    matrix, as phones write it."""
    width, height = size
    odd = width % 2 or height % 2
    seconds = float((pts[-1] - pts[0]) * time_base) if len(pts) > 1 else 0.0
    rate = Fraction(round(len(pts) / seconds)) if seconds else Fraction(25)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if odd else "yuv420p"
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        stream.options = {"preset": preset, "crf": "28"}
        if rotation:
            stream.set_display_rotation(rotation)
        frames = pictures if pictures is not None else _pictures(width, height, len(pts))
        for stamp, picture in zip(pts, frames, strict=False):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
            frame.pts, frame.time_base = stamp, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def constant_rate(count: int, fps: int = 25, time_base: Fraction = Fraction(1, 1000)) -> list[int]:
    """Timestamps of ``count`` frames at ``fps``."""
    return [round(index / fps / time_base) for index in range(count)]


def variable_rate(
    segments: Sequence[tuple[int, float]], time_base: Fraction = Fraction(1, 1000)
) -> list[int]:
    """Timestamps of a phone recording whose rate changes: ``segments`` of (frames, fps)."""
    stamps, now = [], 0.0
    for count, fps in segments:
        for _ in range(count):
            stamps.append(round(now / time_base))
            now += 1 / fps
    return stamps


def damage(source: Path, target: Path, at: float, length: int, flip: bool = False) -> Path:
    """A copy of ``source`` with ``length`` bytes at fraction ``at`` of the file zeroed (or, with
    ``flip``, every bit inverted): a damaged disk sector or a bad download."""
    data = bytearray(source.read_bytes())
    start = int(len(data) * at)
    chunk = data[start : start + length]
    data[start : start + length] = bytes(255 - byte for byte in chunk) if flip else bytes(len(chunk))
    target.write_bytes(bytes(data))
    return target


def ffprobe_frames(path: Path) -> int:
    """How many frames FFmpeg's own tool decodes from ``path`` (it skips what it cannot decode)."""
    command = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"]
    command += ["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)]
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())
