"""Hiding a rectangle of a picture: blur, pixelate or fill, on BGR pictures or straight on the Y, U
and V planes of a yuv420p frame (the encoder's format, as :mod:`streamproc.draw` draws).

Blur and pixelate shrink the region to a few cells across (``CELLS``) and scale it back: the cost
is one pass over the region whatever its size, and nothing finer than a cell survives, so a face
cannot be recognised however large it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

Mode = Literal["blur", "pixelate", "fill"]
MODES: tuple[Mode, ...] = ("blur", "pixelate", "fill")
CELLS = 8  # cells across the longer side of a region: eyes, nose and mouth fall in one or two each
BGR_FILL = (0, 0, 0)
YUV_FILL = (16, 128, 128)  # black in limited-range BT.601, what swscale makes of BGR black
Region = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2 and y2 excluded


def cover(image: np.ndarray, region: Region, mode: Mode, fill: int | Sequence[int] = BGR_FILL) -> None:
    """Hide ``region`` of ``image`` (H x W or H x W x C, uint8) in place."""
    x1, y1, x2, y2 = region
    roi = image[y1:y2, x1:x2]
    if roi.size == 0:
        return
    if mode == "fill":
        roi[...] = fill
        return
    height, width = roi.shape[:2]
    cell = max(1.0, max(width, height) / CELLS)
    small_size = (max(1, round(width / cell)), max(1, round(height / cell)))
    small = cv2.resize(roi, small_size, interpolation=cv2.INTER_AREA)
    if mode == "pixelate":
        roi[...] = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).reshape(roi.shape)
        return
    smooth = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    kernel = max(1, round(cell)) | 1  # bilinear scaling leaves the cell grid visible: smooth it away
    roi[...] = cv2.blur(smooth, (kernel, kernel)).reshape(roi.shape)


def cover_yuv420(planes: Sequence[np.ndarray], regions: Sequence[Region], mode: Mode) -> None:
    """Hide each region (full-resolution pixels) on the Y, U and V planes of a yuv420p picture; a
    chroma region is the luma one halved and widened to whole chroma pixels."""
    for x1, y1, x2, y2 in regions:
        cover(planes[0], (x1, y1, x2, y2), mode, YUV_FILL[0])
        chroma = (x1 // 2, y1 // 2, (x2 + 1) // 2, (y2 + 1) // 2)
        cover(planes[1], chroma, mode, YUV_FILL[1])
        cover(planes[2], chroma, mode, YUV_FILL[2])


def cover_bgr(image: np.ndarray, regions: Sequence[Region], mode: Mode) -> np.ndarray:
    """Hide each region of a BGR picture in place; returns it."""
    for region in regions:
        cover(image, region, mode)
    return image
