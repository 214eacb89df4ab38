"""Annotation: face boxes, keypoints and scores drawn onto a BGR picture or straight onto the Y, U
and V planes of a yuv420p frame (the encoder's format: no round trip through BGR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from streamproc.frames import Detections

Colour = tuple[int, int, int]  # BGR
BOX_COLOUR: Colour = (0, 220, 0)
KEYPOINT_COLOUR: Colour = (0, 140, 255)
TEXT_COLOUR: Colour = (255, 255, 255)


@dataclass(frozen=True)
class _Canvas:
    """One picture to draw on: ``scale`` of its pixels per frame pixel, and how it shows a colour."""

    image: np.ndarray
    scale: float
    ink: Callable[[Colour], int | Colour]


def yuv(colour: Colour) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of a BGR colour: what swscale makes of it for yuv420p."""
    b, g, r = colour
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def draw_detections(
    image: np.ndarray, detections: Detections, keypoints: bool = True, scores: bool = True
) -> np.ndarray:
    """Draw in place on ``image`` (BGR uint8) and return it."""
    _draw([_Canvas(image, 1.0, lambda colour: colour)], image.shape[:2], detections, keypoints, scores)
    return image


def draw_detections_yuv420(
    planes: Sequence[np.ndarray], detections: Detections, keypoints: bool = True, scores: bool = True
) -> None:
    """Draw in place on the Y, U and V planes of a yuv420p picture (chroma at half resolution)."""
    luma, u_plane, v_plane = planes
    canvases = [
        _Canvas(luma, 1.0, lambda colour: yuv(colour)[0]),
        _Canvas(u_plane, 0.5, lambda colour: yuv(colour)[1]),
        _Canvas(v_plane, 0.5, lambda colour: yuv(colour)[2]),
    ]
    _draw(canvases, luma.shape[:2], detections, keypoints, scores)


def _draw(
    canvases: Sequence[_Canvas],
    size: tuple[int, ...],
    detections: Detections,
    keypoints: bool,
    scores: bool,
) -> None:
    """The same drawing on every canvas, sized for a frame of ``size`` (height, width) pixels."""
    thickness = max(1, round(min(size) / 300))
    font_scale = max(0.4, min(size) / 900)
    for index in range(len(detections)):
        x1, y1, x2, y2 = (float(v) for v in detections.boxes[index])
        label = _label_text(detections, index) if scores else ""
        for canvas in canvases:
            s = canvas.scale

            def at(x: float, y: float, s: float = s) -> tuple[int, int]:
                return round(x * s), round(y * s)

            line = max(1, round(thickness * s))
            cv2.rectangle(canvas.image, at(x1, y1), at(x2, y2), canvas.ink(BOX_COLOUR), line, cv2.LINE_AA)
            if keypoints:
                for x, y in detections.keypoints[index]:
                    radius = max(1, round((thickness + 1) * s))
                    cv2.circle(canvas.image, at(x, y), radius, canvas.ink(KEYPOINT_COLOUR), -1)
            if label:
                _label(canvas, label, at(x1, y1), font_scale * s)


def _label_text(detections: Detections, index: int) -> str:
    """'face 0.93', prefixed with the track's number ('#3 face 0.93') once tracking confirmed it."""
    text = f"face {detections.scores[index]:.2f}"
    track_ids = detections.extra.get("track_id")
    if track_ids is not None and track_ids[index]:
        # track ids are '<start>-<run>-<n>': the short number is what a viewer can follow
        text = f"#{str(track_ids[index]).rsplit('-', 1)[-1]} {text}"
    return text


def _label(canvas: _Canvas, text: str, corner: tuple[int, int], font_scale: float) -> None:
    """The score above the box's top-left corner, white on the box colour."""
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    x1, y1 = corner
    top = max(0, y1 - text_h - baseline - 2)
    bottom_right = (x1 + text_w + 2, top + text_h + baseline + 2)
    cv2.rectangle(canvas.image, (x1, top), bottom_right, canvas.ink(BOX_COLOUR), -1)
    origin = (x1 + 1, top + text_h + 1)
    ink = canvas.ink(TEXT_COLOUR)
    cv2.putText(canvas.image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1, cv2.LINE_AA)
