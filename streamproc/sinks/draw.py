"""Annotation: face boxes, keypoints and scores drawn onto a BGR picture or straight onto the Y, U
and V planes of a yuv420p frame (the encoder's format: no round trip through BGR)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from streamproc.core.frames import Detections

Colour = tuple[int, int, int]  # BGR
BOX_COLOUR: Colour = (0, 220, 0)
KEYPOINT_COLOUR: Colour = (0, 140, 255)
TEXT_COLOUR: Colour = (255, 255, 255)


@dataclass(frozen=True)
class _Canvas:
    """One picture to draw on: ``scale`` of its pixels per frame pixel, and how it shows each colour."""

    image: np.ndarray
    scale: float
    inks: Mapping[Colour, int | Colour]


def yuv(colour: Colour) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U, V of a BGR colour: what swscale makes of it for yuv420p."""
    b, g, r = colour
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


_COLOURS = (BOX_COLOUR, KEYPOINT_COLOUR, TEXT_COLOUR)
_BGR_INKS = {colour: colour for colour in _COLOURS}
# the Y, U and V plane values of each colour, worked out once
_PLANE_INKS = [{colour: yuv(colour)[plane] for colour in _COLOURS} for plane in range(3)]


def draw_detections(
    image: np.ndarray, detections: Detections, keypoints: bool = True, scores: bool = True
) -> np.ndarray:
    """Draw in place on ``image`` (BGR uint8) and return it."""
    _draw([_Canvas(image, 1.0, _BGR_INKS)], image.shape[:2], detections, keypoints, scores)
    return image


def draw_detections_yuv420(
    planes: Sequence[np.ndarray], detections: Detections, keypoints: bool = True, scores: bool = True
) -> None:
    """Draw in place on the Y, U and V planes of a yuv420p picture (chroma at half resolution)."""
    canvases = [
        _Canvas(plane, scale, inks)
        for plane, scale, inks in zip(planes, (1.0, 0.5, 0.5), _PLANE_INKS, strict=True)
    ]
    _draw(canvases, planes[0].shape[:2], detections, keypoints, scores)


def _draw(
    canvases: Sequence[_Canvas],
    size: tuple[int, ...],
    detections: Detections,
    keypoints: bool,
    scores: bool,
) -> None:
    """The same drawing on every canvas, sized for a frame of ``size`` (height, width) pixels.

    Coordinates are scaled and rounded for all faces at once: per-point Python arithmetic cost
    more than the drawing itself (0.3 ms a frame for two faces on three planes).
    """
    if not len(detections):
        return
    thickness = max(1, round(min(size) / 300))
    font_scale = max(0.4, min(size) / 900)
    labels = [_label_text(detections, index) if scores else "" for index in range(len(detections))]
    boxes = detections.boxes.astype(np.float64)
    points = detections.keypoints.astype(np.float64)
    for canvas in canvases:
        s, image, inks = canvas.scale, canvas.image, canvas.inks
        line = max(1, round(thickness * s))
        radius = max(1, round((thickness + 1) * s))
        scaled_points = np.rint(points * s).astype(int).tolist() if keypoints else None
        for index, (x1, y1, x2, y2) in enumerate(np.rint(boxes * s).astype(int).tolist()):
            cv2.rectangle(image, (x1, y1), (x2, y2), inks[BOX_COLOUR], line, cv2.LINE_AA)
            if scaled_points is not None:
                for x, y in scaled_points[index]:
                    cv2.circle(image, (x, y), radius, inks[KEYPOINT_COLOUR], -1)
            if labels[index]:
                _label(canvas, labels[index], (x1, y1), font_scale * s)


def _label_text(detections: Detections, index: int) -> str:
    """'face 0.93', prefixed with the track's number ('#3 face 0.93') once tracking confirmed it."""
    text = f"face {detections.scores[index]:.2f}"
    track_id = detections.track_ids[index] if detections.track_ids else None
    if track_id:
        # track ids are '<start>-<run>-<n>': the short number is what a viewer can follow
        text = f"#{track_id.rsplit('-', 1)[-1]} {text}"
    return text


def _label(canvas: _Canvas, text: str, corner: tuple[int, int], font_scale: float) -> None:
    """The score above the box's top-left corner, white on the box colour."""
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    x1, y1 = corner
    top = max(0, y1 - text_h - baseline - 2)
    bottom_right = (x1 + text_w + 2, top + text_h + baseline + 2)
    cv2.rectangle(canvas.image, (x1, top), bottom_right, canvas.inks[BOX_COLOUR], -1)
    origin = (x1 + 1, top + text_h + 1)
    ink = canvas.inks[TEXT_COLOUR]
    cv2.putText(canvas.image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink, 1, cv2.LINE_AA)
