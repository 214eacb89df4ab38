"""Clips with known face positions, for the redaction tests and ``benchmarks/redaction``.

Real face photos from ``../shared/images`` (Grace Hopper, two men in ``face.jpg``), cut out as head
patches, move over a background photo. Where each face is on every frame is known from the
placement, not from any detector: the face box in each photo was chosen by eye once (brows to
chin, cheek to cheek) and is moved and scaled with its patch.

Scenes: ``pan`` (the camera pans fast over three faces, back and forth), ``edges`` (a face enters
from the left, right, top and bottom edge in turn), ``zoom`` (a face grows from 40 px wide to the
full height of the picture). Each clip is an H.264 MP4 with ``NAME.boxes.json`` beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SHARED = Path(os.environ.get("STREAMPROC_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
IMAGES = SHARED / "images"
SCENES = ("pan", "edges", "zoom")
MIN_VISIBLE = 0.3  # a face counts on a frame when this much of its box is inside the picture


@dataclass(frozen=True)
class Head:
    """A head cut from a photo: ``crop`` (x1, y1, x2, y2) in the photo, ``face`` the face box in it."""

    photo: str
    crop: tuple[int, int, int, int]
    face: tuple[int, int, int, int]


HEADS = (
    Head("grace_hopper.bmp", (130, 20, 395, 370), (170, 140, 350, 335)),
    Head("face.jpg", (215, 15, 385, 235), (250, 70, 345, 195)),
    Head("face.jpg", (85, 55, 245, 250), (115, 100, 225, 215)),
)


@dataclass(frozen=True)
class Placement:
    """Head ``head`` drawn with its face ``face_width`` pixels wide, its crop's top left at (x, y)."""

    head: int
    face_width: float
    x: float
    y: float


@dataclass
class Patch:
    pixels: np.ndarray  # BGR head crop
    face: np.ndarray  # face box inside the crop, crop pixels

    @classmethod
    def load(cls, head: Head) -> Patch:
        photo = cv2.imread(str(IMAGES / head.photo), cv2.IMREAD_COLOR)
        if photo is None:
            raise FileNotFoundError(IMAGES / head.photo)
        x1, y1, x2, y2 = head.crop
        face = np.array(head.face, np.float64) - [x1, y1, x1, y1]
        return cls(photo[y1:y2, x1:x2].copy(), face)


def _scenes(name: str, width: int, height: int, frames: int) -> Iterator[list[Placement]]:
    """Where each head is on each frame of scene ``name``."""
    if name == "pan":
        yield from _pan(width, height, frames)
    elif name == "edges":
        yield from _edges(width, height, frames)
    elif name == "zoom":
        yield from _zoom(width, height, frames)
    else:
        raise ValueError(f"unknown scene {name!r}: one of {', '.join(SCENES)}")


def _pan(width: int, height: int, frames: int) -> Iterator[list[Placement]]:
    """Three faces on a strip twice the picture's width; the camera sweeps it at width/12 per frame."""
    face = height / 5
    spots = [(0.3, 0.25), (0.9, 0.45), (1.5, 0.2)]  # (x in picture widths, y in heights) on the strip
    speed = width / 12
    travel = width  # the strip is 2 widths: the camera moves one width and back
    for index in range(frames):
        position = (index * speed) % (2 * travel)
        camera = position if position <= travel else 2 * travel - position
        yield [Placement(head, face, sx * width - camera, sy * height) for head, (sx, sy) in enumerate(spots)]


def _edges(width: int, height: int, frames: int) -> Iterator[list[Placement]]:
    """A face slides in from the left, right, top, then bottom edge, a quarter of the clip each."""
    face = height / 4
    phase = max(1, frames // 4)
    for index in range(frames):
        edge, step = divmod(index, phase)
        edge = min(edge, 3)
        progress = min(1.0, step / max(1, phase * 0.6))  # in for 60 % of the phase, then still
        head = edge % len(HEADS)
        size = 2.2 * face  # about the crop's size: it starts just outside
        middle_x, middle_y = (width - size) / 2, (height - size) / 2
        outside = {0: (-size, middle_y), 1: (width, middle_y), 2: (middle_x, -size), 3: (middle_x, height)}
        inside = {0: (width * 0.05, middle_y), 1: (width * 0.95 - size, middle_y)}
        inside |= {2: (middle_x, height * 0.02), 3: (middle_x, height * 0.98 - size)}
        (ox, oy), (ix, iy) = outside[edge], inside[edge]
        yield [Placement(head, face, ox + (ix - ox) * progress, oy + (iy - oy) * progress)]


def _zoom(width: int, height: int, frames: int) -> Iterator[list[Placement]]:
    """Grace Hopper's face from 40 px wide to the picture's full height, geometrically, centred."""
    head = HEADS[0]
    aspect = (head.face[3] - head.face[1]) / (head.face[2] - head.face[0])
    start, end = 40.0, height / aspect
    for index in range(frames):
        face = start * (end / start) ** (index / max(1, frames - 1))
        scale = face / (head.face[2] - head.face[0])
        centre_x = (head.face[0] + head.face[2]) / 2 - head.crop[0]
        centre_y = (head.face[1] + head.face[3]) / 2 - head.crop[1]
        yield [Placement(0, face, width / 2 - centre_x * scale, height / 2 - centre_y * scale)]


def _background(width: int, height: int, strip: float) -> np.ndarray:
    photo = cv2.imread(str(IMAGES / "kite_and_cold.jpg"), cv2.IMREAD_COLOR)
    return cv2.resize(photo, (round(width * strip), height), interpolation=cv2.INTER_AREA)


def render(
    scene: str, placements: list[Placement], patches: list[Patch], background: np.ndarray, width: int
) -> tuple[np.ndarray, list[dict]]:
    """One frame (BGR) and its faces: ``{"head", "box", "visible"}``, the box clipped to the picture."""
    height = background.shape[0]
    offset = 0.0
    if scene == "pan" and placements:  # the strip moves with the faces: the whole view pans
        offset = -(placements[0].x - 0.3 * width)
    start = round(offset)
    picture = background[:, start : start + width].copy()
    faces = []
    for place in placements:
        patch = patches[place.head]
        scale = place.face_width / (patch.face[2] - patch.face[0])
        pixels = cv2.resize(
            patch.pixels,
            (max(1, round(patch.pixels.shape[1] * scale)), max(1, round(patch.pixels.shape[0] * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        x, y = round(place.x), round(place.y)
        _paste(picture, pixels, x, y)
        box = patch.face * scale + [x, y, x, y]
        faces.append(_face_record(place.head, box, width, height))
    return picture, faces


def _paste(picture: np.ndarray, pixels: np.ndarray, x: int, y: int) -> None:
    height, width = picture.shape[:2]
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + pixels.shape[1], width), min(y + pixels.shape[0], height)
    if x2 > x1 and y2 > y1:
        picture[y1:y2, x1:x2] = pixels[y1 - y : y2 - y, x1 - x : x2 - x]


def _face_record(head: int, box: np.ndarray, width: int, height: int) -> dict:
    area = (box[2] - box[0]) * (box[3] - box[1])
    clipped = np.clip(box, 0, [width, height, width, height])
    inside = max(0.0, clipped[2] - clipped[0]) * max(0.0, clipped[3] - clipped[1])
    return {"head": head, "box": [round(float(v), 1) for v in clipped], "visible": round(inside / area, 3)}


def frames_of(scene: str, width: int, height: int, count: int) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """Each frame of a scene (BGR) with its faces."""
    patches = [Patch.load(head) for head in HEADS]
    background = _background(width, height, 2.0 if scene == "pan" else 1.0)
    for placements in _scenes(scene, width, height, count):
        yield render(scene, placements, patches, background, width)


def write_clip(
    path: Path, scene: str, size: tuple[int, int] = (640, 360), frames: int = 50, fps: int = 25
) -> Path:
    """An H.264 MP4 of ``scene`` and ``path.with_suffix('.boxes.json')``: per frame, the faces on it."""
    width, height = size
    truth = []
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for index, (picture, faces) in enumerate(frames_of(scene, width, height, frames)):
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
            truth.append({"frame": index, "faces": faces})
        container.mux(stream.encode(None))
    boxes_path(path).write_text(json.dumps({"scene": scene, "size": [width, height], "frames": truth}))
    return path


def boxes_path(clip: Path) -> Path:
    return clip.with_name(clip.stem + ".boxes.json")


def known_faces(clip: Path, min_visible: float = MIN_VISIBLE) -> list[list[np.ndarray]]:
    """Per frame, the face boxes of a clip that are at least ``min_visible`` inside the picture."""
    truth = json.loads(boxes_path(clip).read_text())
    return [
        [np.array(face["box"]) for face in frame["faces"] if face["visible"] >= min_visible]
        for frame in truth["frames"]
    ]


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video as BGR arrays, in order."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def detail_match(original: np.ndarray, output: np.ndarray, box: np.ndarray) -> float:
    """How much of the fine detail (edges of eyes, nose, mouth) of ``original`` inside ``box`` is
    still in ``output``: the correlation of their high-pass images, 1 for the same face, about 0
    where it was blurred, pixelated or filled (a face left visible after re-encoding scores > 0.8)."""
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0
    kernel = max(3, (min(x2 - x1, y2 - y1) // 12) | 1)
    details = []
    for picture in (original, output):
        grey = cv2.cvtColor(picture[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(np.float32)
        details.append((grey - cv2.blur(grey, (kernel, kernel))).ravel())
    a, b = details[0] - details[0].mean(), details[1] - details[1].mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


LEAK_MATCH = 0.3  # a face whose detail match is above this was left (partly) visible
