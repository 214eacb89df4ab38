"""From face boxes to the regions redaction covers: the whole head, not just BlazeFace's box.

BlazeFace's box runs from about the eyebrows to the chin and from cheek to cheek; hair, forehead
and ears lie outside it. The head region adds ``margin`` of the box's size on the sides and below,
and twice that above (forehead and hair), then is clipped to the picture. A face cut off by the
picture's edge gets twice the margin: the detector's box of a half face is smaller and often shifted.
"""

from __future__ import annotations

import math

import numpy as np

from streamproc.core.frames import Detections
from streamproc.privacy.cover import Region

TOP_FACTOR = 2.0  # the forehead and hair reach further above the box than the ears do beside it
# a face cut by the picture's edge gets a box of the part seen, often shifted: twice the margin
CUT_FACTOR = 2.0


def head_region(box: np.ndarray, margin: float, width: int, height: int) -> Region | None:
    """The head around face ``box`` (x1, y1, x2, y2), in whole pixels; None when it lies outside."""
    x1, y1, x2, y2 = (float(value) for value in box)
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        margin *= CUT_FACTOR
    side_x, side_y = (x2 - x1) * margin, (y2 - y1) * margin
    left = max(0, math.floor(x1 - side_x))
    top = max(0, math.floor(y1 - side_y * TOP_FACTOR))
    right = min(width, math.ceil(x2 + side_x))
    bottom = min(height, math.ceil(y2 + side_y))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def entry_region(box: np.ndarray, margin: float, width: int, height: int) -> Region | None:
    """Where a face first seen in ``box`` may have been on the frames before, when the detector
    could not see it: its head region, stretched to each picture edge that lies within one face
    size of the box (the face came in over that edge, partly outside, too cut to be recognised)."""
    region = head_region(box, margin, width, height)
    if region is None:
        return None
    x1, y1, x2, y2 = (float(value) for value in box)
    near_x, near_y = x2 - x1, y2 - y1
    left, top, right, bottom = region
    return (
        0 if x1 < near_x else left,
        0 if y1 < near_y else top,
        width if x2 > width - near_x else right,
        height if y2 > height - near_y else bottom,
    )


def head_regions(boxes: np.ndarray, margin: float, width: int, height: int) -> list[Region]:
    """The head regions of (n, 4) boxes that reach into a ``width`` x ``height`` picture."""
    regions = (head_region(box, margin, width, height) for box in boxes)
    return [region for region in regions if region is not None]


def as_regions(array: np.ndarray | None) -> list[Region]:
    """(n, 4) float regions as whole-pixel tuples (none for None)."""
    if array is None:
        return []
    return [(x1, y1, x2, y2) for x1, y1, x2, y2 in array.astype(int).tolist()]


def cover_of(detections: Detections) -> list[Region]:
    """The regions the redaction stage chose for a frame, in whole pixels."""
    if detections.cover is None:
        raise RuntimeError("a redacting output got a frame that no redaction stage saw")
    return as_regions(detections.cover)
