"""Synthetic H.264 test videos with real, moving faces.

The faces are crops of the public-domain NASA portrait of astronaut Eileen Collins that ships with
scikit-image (``skimage.data.astronaut()``).  They are composited with a feathered elliptical alpha
mask over a face-free background (a brick wall from ``skimage.data.brick()``) and encoded with libx264
(yuv420p, ``movflags=+faststart``) through PyAV.

Scenarios (times below are for the default ``seconds=4``; every time scales with ``seconds / 4``):

``"moving"`` (default)
    Two faces, visible and fully inside the frame for the whole clip.  Face ``"A"`` (head and
    shoulders, :data:`FACE_SCALE` of the frame height) moves left -> right in the upper band; face
    ``"B"`` (mirrored, a bit smaller) moves right -> left in the lower band.  The faces never overlap
    (their boxes are ~0.2 of the frame height apart vertically); only the feathered sprite edges (A's
    collar, B's hair) touch when they cross in the middle of the clip.

``"enter_exit"``
    See :data:`ENTER_EXIT_TIMELINE`: no face during 0-0.5 s; face ``"A"`` slides in from the left at
    0.5 s and leaves on the right at 2.5 s (upper band); face ``"B"`` slides in from the right at 1.5 s
    and leaves on the left at 3.5 s (lower band, mirrored); no face during 3.5-4 s.  Each face
    appears exactly once, so a tracker should report exactly two tracks.  At 640x360 / 25 fps:
    A's sprite is in frames 13-62 and its face fully inside in frames 25-53; B's sprite in frames
    38-87, face fully inside in 49-78; frames 0-12 and 88-99 show no face.

``"static"``
    One face (``"A"``), centred, not moving.

The ground truth is available without decoding anything: :func:`face_placements` gives, for every
frame, where each face sprite is and an approximate face box (:attr:`FacePlacement.face_box`).
:func:`iter_frames` yields the raw RGB frames, :func:`make_sample` writes the MP4.

CLI::

    python samples/make_sample.py OUT.mp4 [--width 640 --height 360 --fps 25 --seconds 4
                                           --scenario moving --seed 0]
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np

log = logging.getLogger("make_sample")

SCENARIOS: tuple[str, ...] = ("moving", "enter_exit", "static")

#: Crop of the 512x512 astronaut photo used as the face sprite: (row0, row1, col0, col1).
ASTRONAUT_CROP: tuple[int, int, int, int] = (0, 260, 120, 380)
#: Face box inside that crop, as fractions (x1, y1, x2, y2) of the crop size (BlazeFace on the crop).
FACE_BOX_IN_CROP: tuple[float, float, float, float] = (54 / 260, 74 / 260, 156 / 260, 175 / 260)

#: Sprite (head-and-shoulders crop) side length as a fraction of the frame height, face "A".  The face
#: itself is ~0.39 of the sprite, i.e. ~0.31 of the frame height (~0.17 of the width at 16:9): BlazeFace
#: short-range (128x128 letterboxed input) only finds faces reliably from ~0.15 of the long side on.
FACE_SCALE: float = 0.8
#: Face "B" is this much smaller than face "A".
FACE_B_RELATIVE_SCALE: float = 0.9

#: The timeline of the ``"enter_exit"`` scenario for a clip of :data:`ENTER_EXIT_BASE_SECONDS`.
#: face id -> (first time the sprite touches the frame, time it has completely left the frame).
#: Outside these spans the face is not in the picture at all; there is no face during 0-0.5 s and
#: 3.5-4 s.  Face "A" enters on the left and exits on the right (upper band), face "B" enters on the
#: right and exits on the left (lower band); both move at constant speed, so the face box is fully
#: inside the frame only for the middle part of each span (use FacePlacement.face_inside).
ENTER_EXIT_BASE_SECONDS: float = 4.0
ENTER_EXIT_TIMELINE: dict[str, tuple[float, float]] = {"A": (0.5, 2.5), "B": (1.5, 3.5)}

#: Keyframe at least this often (seconds).
KEYFRAME_INTERVAL_S: float = 2.0

# Sprite alpha: ellipse centre and semi-axes (fractions of the sprite side) and the feathered fraction
# of the radius.
_ELLIPSE_CENTER = (0.44, 0.50)
_ELLIPSE_AXES = (0.40, 0.48)
_ELLIPSE_FEATHER = 0.3

# Vertical centres (fraction of frame height) of the two faces' bands.  The sprites are large, so
# the top of A's hair is cut by the frame edge and, at the crossing in "moving", the feathered
# sprite edges (A's collar, B's hair) overlap a little; the face boxes themselves stay well apart.
_BAND_A = 0.25
_BAND_B = 0.76
# In "moving", how far (fraction of the sprite side) a sprite may leave the frame at the ends of its
# path; the face box stays fully inside.
_MOVING_OVERSHOOT = 0.1


def enter_exit_timeline(seconds: float = ENTER_EXIT_BASE_SECONDS) -> dict[str, tuple[float, float]]:
    """:data:`ENTER_EXIT_TIMELINE` scaled to a clip of ``seconds``."""
    k = seconds / ENTER_EXIT_BASE_SECONDS
    return {fid: (t0 * k, t1 * k) for fid, (t0, t1) in ENTER_EXIT_TIMELINE.items()}


@dataclass(frozen=True)
class FacePlacement:
    """Where a face sprite sits in one frame (top-left ``x, y`` may be outside the frame)."""

    face_id: str
    x: int
    y: int
    size: int
    mirrored: bool

    @property
    def sprite_box(self) -> tuple[int, int, int, int]:
        """x1, y1, x2, y2 of the square sprite in frame pixels (not clipped)."""
        return (self.x, self.y, self.x + self.size, self.y + self.size)

    @property
    def face_box(self) -> tuple[float, float, float, float]:
        """Approximate x1, y1, x2, y2 of the face itself in frame pixels (not clipped)."""
        fx1, fy1, fx2, fy2 = FACE_BOX_IN_CROP
        if self.mirrored:
            fx1, fx2 = 1.0 - fx2, 1.0 - fx1
        s = self.size
        return (self.x + fx1 * s, self.y + fy1 * s, self.x + fx2 * s, self.y + fy2 * s)

    def face_inside(self, width: int, height: int) -> bool:
        """True when the whole face box lies inside a ``width`` x ``height`` frame."""
        x1, y1, x2, y2 = self.face_box
        return x1 >= 0 and y1 >= 0 and x2 <= width and y2 <= height

    def visible(self, width: int, height: int) -> bool:
        """True when any part of the sprite overlaps the frame."""
        x1, y1, x2, y2 = self.sprite_box
        return x2 > 0 and y2 > 0 and x1 < width and y1 < height


def _check_args(width: int, height: int, fps: int, seconds: float, scenario: str) -> int:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise ValueError(f"width/height must be even and >= 64, got {width}x{height}")
    if int(fps) != fps or fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps}")
    n = round(fps * seconds)
    if n < 1:
        raise ValueError(f"fps*seconds must give at least one frame, got {fps}*{seconds}")
    return n


def _sizes(height: int) -> tuple[int, int]:
    size_a = max(16, round(FACE_SCALE * height))
    size_b = max(16, round(FACE_SCALE * FACE_B_RELATIVE_SCALE * height))
    return size_a, size_b


def face_placements(
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    seconds: float = 4.0,
    scenario: str = "moving",
    seed: int = 0,
) -> list[list[FacePlacement]]:
    """Per frame, the faces that are (at least partly) in the picture."""
    n = _check_args(width, height, fps, seconds, scenario)
    rng = np.random.default_rng(seed)
    size_a, size_b = _sizes(height)
    # Small seed-dependent wobble so different seeds give different (but always valid) clips.
    bob_amp = height * rng.uniform(0.01, 0.025, size=2)
    bob_phase = rng.uniform(0, 2 * math.pi, size=2)
    bob_cycles = rng.uniform(0.8, 1.6, size=2)

    fy = (FACE_BOX_IN_CROP[1] + FACE_BOX_IN_CROP[3]) / 2  # face centre, fraction of the sprite

    def band_y(center: float, size: int, k: int, t_frac: float) -> int:
        """Sprite top so that the face centre sits at ``center`` (+ wobble) of the frame height."""
        wobble = bob_amp[k] * math.sin(2 * math.pi * bob_cycles[k] * t_frac + bob_phase[k])
        return round(center * height + wobble - fy * size)

    frames: list[list[FacePlacement]] = []
    duration = n / fps
    timeline = enter_exit_timeline(seconds)
    for i in range(n):
        t = i / fps
        u = i / (n - 1) if n > 1 else 0.5
        faces: list[FacePlacement] = []
        if scenario == "static":
            faces.append(FacePlacement("A", (width - size_a) // 2, (height - size_a) // 2, size_a, False))
        elif scenario == "moving":
            ease = 0.5 - 0.5 * math.cos(math.pi * u)  # smooth 0 -> 1
            oa, ob = _MOVING_OVERSHOOT * size_a, _MOVING_OVERSHOOT * size_b
            xa = round(-oa + ease * (width - size_a + 2 * oa))
            xb = round(-ob + (1.0 - ease) * (width - size_b + 2 * ob))
            faces.append(FacePlacement("A", xa, band_y(_BAND_A, size_a, 0, u), size_a, False))
            faces.append(FacePlacement("B", xb, band_y(_BAND_B, size_b, 1, u), size_b, True))
        else:  # enter_exit: linear slide from fully outside to fully outside
            for k, (fid, size, band, mirrored) in enumerate(
                (("A", size_a, _BAND_A, False), ("B", size_b, _BAND_B, True))
            ):
                t0, t1 = timeline[fid]
                p = (t - t0) / (t1 - t0)
                if not 0.0 < p < 1.0:
                    continue
                x_left = -size + p * (width + size)  # moves left -> right
                x = x_left if fid == "A" else width - size - x_left
                fp = FacePlacement(fid, round(x), band_y(band, size, k, t / duration), size, mirrored)
                if fp.visible(width, height):
                    faces.append(fp)
        frames.append(faces)
    return frames


@lru_cache(maxsize=8)
def _sprite(size: int, mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
    """(premultiplied RGB float32 HxWx3, 1-alpha float32 HxWx1) of the astronaut head sprite."""
    from skimage import data

    r0, r1, c0, c1 = ASTRONAUT_CROP
    crop = np.ascontiguousarray(data.astronaut()[r0:r1, c0:c1])
    interp = cv2.INTER_AREA if size < crop.shape[0] else cv2.INTER_CUBIC
    rgb = cv2.resize(crop, (size, size), interpolation=interp).astype(np.float32)
    # Feathered ellipse around head and shoulders, slightly left of centre (where the face is).  The
    # alpha falls smoothly from 1 to exactly 0 at the ellipse border, which lies inside the square.
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    ex = (coords[None, :] - _ELLIPSE_CENTER[0]) / _ELLIPSE_AXES[0]
    ey = (coords[:, None] - _ELLIPSE_CENTER[1]) / _ELLIPSE_AXES[1]
    r = np.sqrt(ex * ex + ey * ey)
    a = np.clip((1.0 - r) / _ELLIPSE_FEATHER, 0.0, 1.0)
    mask = a * a * (3.0 - 2.0 * a)  # smoothstep
    if mirrored:
        rgb = rgb[:, ::-1]
        mask = mask[:, ::-1]
    alpha = mask[:, :, None]
    premult = np.ascontiguousarray(rgb * alpha)
    inv = np.ascontiguousarray(1.0 - alpha)
    premult.flags.writeable = False
    inv.flags.writeable = False
    return premult, inv


def make_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A face-free indoor-looking scene as an HxWx3 uint8 RGB array.

    A brick wall (``skimage.data.brick()``, a grayscale brick texture, turned on its side and tinted
    terracotta), slightly out of focus, lit by a soft spot light, with a darker band (a table edge)
    at the bottom.  Photos such as ``coffee()`` (the spoon), ``chelsea()`` (a cat) or ``rocket()``
    (the rocket's tip) make BlazeFace report false faces at scores >= 0.5; this wall stays below
    ~0.3 for both the short- and full-range models.
    """
    from skimage import data

    rng = np.random.default_rng([seed, 1])
    tex = np.rot90(data.brick()).astype(np.float32) / 255.0  # 512x512, bricks now horizontal
    th, tw = tex.shape
    # Crop to the frame's aspect ratio at a seed-dependent offset (at most the full texture).
    aspect = width / height
    cw = int(min(tw, round(th * 0.85 * aspect)))
    ch = int(min(th, round(cw / aspect)))
    y0 = int(rng.integers(0, th - ch + 1))
    x0 = int(rng.integers(0, tw - cw + 1))
    crop = np.ascontiguousarray(tex[y0 : y0 + ch, x0 : x0 + cw])
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
    lum = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    lum = cv2.GaussianBlur(lum, (0, 0), max(1.0, 0.004 * height))
    # Soft spot light somewhere in the upper half.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    lx, ly = rng.uniform(0.3, 0.7) * width, rng.uniform(0.15, 0.45) * height
    d2 = ((xx - lx) ** 2 + (yy - ly) ** 2) / float(max(width, height)) ** 2
    light = 0.55 + 0.75 * np.exp(-d2 / 0.18)
    tint = np.array([1.0, 0.62, 0.45], np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    img = (lum * light)[:, :, None] * tint[None, None, :] * 255.0
    # Table edge: a darker, warm, smooth band at the bottom 12% of the frame.
    table_top = round(0.88 * height)
    ramp = np.linspace(0.0, 1.0, height - table_top, dtype=np.float32)[:, None, None]
    table = np.array([70.0, 48.0, 35.0], np.float32) * (1.0 - 0.35 * ramp)
    img[table_top:] = table
    img = cv2.GaussianBlur(img, (0, 0), max(1.0, 0.002 * height))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _composite(frame: np.ndarray, fp: FacePlacement) -> None:
    h, w = frame.shape[:2]
    premult, inv = _sprite(fp.size, fp.mirrored)
    x1, y1 = max(fp.x, 0), max(fp.y, 0)
    x2, y2 = min(fp.x + fp.size, w), min(fp.y + fp.size, h)
    if x2 <= x1 or y2 <= y1:
        return
    sx, sy = x1 - fp.x, y1 - fp.y
    sl = (slice(sy, sy + (y2 - y1)), slice(sx, sx + (x2 - x1)))
    region = frame[y1:y2, x1:x2].astype(np.float32)
    region *= inv[sl]
    region += premult[sl]
    np.clip(region, 0, 255, out=region)
    frame[y1:y2, x1:x2] = (region + 0.5).astype(np.uint8)


def iter_frames(
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    seconds: float = 4.0,
    scenario: str = "moving",
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """Yield the clip's frames as HxWx3 uint8 RGB arrays (the same pixels :func:`make_sample` encodes)."""
    bg = make_background(width, height, seed)
    for faces in face_placements(width, height, fps, seconds, scenario, seed):
        frame = bg.copy()
        for fp in faces:
            _composite(frame, fp)
        yield frame


def make_sample(
    path: Path,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    seconds: float = 4.0,
    scenario: str = "moving",
    seed: int = 0,
) -> Path:
    """Render a scenario and write it as an H.264 MP4 to ``path``; returns ``path``.

    The file has exactly ``round(fps * seconds)`` frames, pts ``i`` in time base ``1/fps`` at encode
    time (the MP4 muxer stores them in a finer time base, e.g. 1/12800, still exactly ``i / fps``),
    a keyframe at least every :data:`KEYFRAME_INTERVAL_S` seconds, and the moov atom at the front
    (``+faststart``).  Raises ``RuntimeError`` if the written file does not check out.
    """
    path = Path(path)
    n = _check_args(width, height, fps, seconds, scenario)
    fps = int(fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    gop = max(1, int(KEYFRAME_INTERVAL_S * fps))
    start = time.perf_counter()

    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={"preset": "veryfast", "crf": "23", "g": str(gop), "keyint_min": str(min(gop, fps))},
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = gop
        stream.codec_context.thread_count = 0  # let x264 pick (all cores)
        stream.codec_context.thread_type = "AUTO"

        for i, rgb in enumerate(iter_frames(width, height, fps, seconds, scenario, seed)):
            # OpenCV's I420 conversion is BT.601 limited range, i.e. what swscale would produce.
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    _verify(path, n, fps, gop)
    log.info(
        "wrote %s: %dx%d %d fps, %d frames, scenario=%s, %d bytes in %.2f s",
        path,
        width,
        height,
        fps,
        n,
        scenario,
        path.stat().st_size,
        time.perf_counter() - start,
    )
    return path


def _verify(path: Path, n_expected: int, fps: int, gop: int) -> None:
    """Decode the file back and check frame count, regular timestamps and keyframe spacing."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if stream.frames != n_expected:
            raise RuntimeError(f"{path}: stream.frames={stream.frames}, expected {n_expected}")
        count = 0
        last_key = None
        for frame in container.decode(stream):
            t = Fraction(frame.pts) * frame.time_base
            if t != Fraction(count, fps):
                raise RuntimeError(f"{path}: frame {count} has time {t}, expected {Fraction(count, fps)}")
            if frame.key_frame:
                last_key = count
            if last_key is None or count - last_key >= gop:
                raise RuntimeError(f"{path}: no keyframe within {gop} frames before frame {count}")
            count += 1
    if count != n_expected:
        raise RuntimeError(f"{path}: decoded {count} frames, expected {n_expected}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a synthetic H.264 MP4 with moving faces.")
    parser.add_argument("out", type=Path, help="output .mp4 path")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--scenario", choices=SCENARIOS, default="moving")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    make_sample(args.out, args.width, args.height, args.fps, args.seconds, args.scenario, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
