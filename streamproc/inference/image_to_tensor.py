"""MediaPipe's ImageToTensor (CPU, OpenCV) for BlazeFace, reproduced bit for bit.

MediaPipe 0.10.14 makes the detector input like this:

1. ROI: the whole picture, centre (W/2, H/2), grown to a square of side max(W, H) about the same
   centre (keep_aspect_ratio). No rounding: the picture sits at a fractional offset in the tensor.
2. ``cv::getPerspectiveTransform`` from the ROI corners to the tensor corners, then
   ``cv::warpPerspective`` (OpenCV 3.4.20, INTER_LINEAR, constant 0 border) into an SxS uint8
   picture. warpPerspective inverts the matrix, maps every tensor pixel to the source in double
   precision onto a 1/32-pixel grid (INTER_BITS = 5), and blends the 2x2 neighbours with 15-bit
   fixed-point weights (INTER_REMAP_COEF_BITS = 15); neighbours outside the picture count as 0.
3. ``convertTo`` float32 with scale 2/255 and offset -1.

Steps 1-2 depend only on the picture size and S, so they become a :class:`WarpPlan` made once per
size: per tensor pixel, the source pixel and the 1/32 fraction exactly as OpenCV 3.4 computes
them (newer OpenCV computes warp coordinates differently, so warpPerspective itself is not used).
``cv2.remap`` with these fixed-point maps then blends the 2x2 neighbours with OpenCV's 15-bit
weights, the arithmetic 3.4 applies after computing its maps (the tests hold it to MediaPipe's
tensors bit for bit). The plan also lists the source rows and columns it reads, in whole 2x2
chroma blocks, so a video frame can be converted to RGB just there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

_INTER_BITS = 5  # OpenCV's sub-pixel grid: 1/32 pixel
_INTER_TAB_SIZE = 1 << _INTER_BITS
_BLOCK_WIDTH = 64  # warpPerspective's tiles: 16 rows x 64 columns for any output of 64+ columns

# uint8 -> model input value as cv::Mat::convertTo makes it: the float32 scale 2/255, applied in
# double, rounded once to float32 (a float32 multiply then add differs in the last bit for 158 values)
_SCALE = np.float64(np.float32(2.0) / np.float32(255.0))
VALUE_TABLE = (np.arange(256, dtype=np.float64) * _SCALE - 1.0).astype(np.float32)


@dataclass(frozen=True)
class SquareRoi:
    """The region of the picture that fills the tensor: a square about the picture's centre."""

    center_x: float
    center_y: float
    side: float

    @classmethod
    def around(cls, width: int, height: int) -> SquareRoi:
        """MediaPipe's ROI for the whole picture with keep_aspect_ratio (float32 like its RotatedRect)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"cannot make a detector input from a {width}x{height} picture")
        half_w, half_h = np.float32(width) / 2, np.float32(height) / 2
        return cls(float(half_w), float(half_h), float(np.float32(max(width, height))))

    @property
    def left(self) -> float:
        return float(np.float32(self.center_x) - np.float32(self.side) / 2)

    @property
    def top(self) -> float:
        return float(np.float32(self.center_y) - np.float32(self.side) / 2)


def roi_to_tensor_matrix(roi: SquareRoi, size: int) -> np.ndarray:
    """The matrix MediaPipe hands to warpPerspective: ROI corners (cv::boxPoints order: bottom-left,
    top-left, top-right, bottom-right) onto the tensor's corners."""
    left, top = roi.left, roi.top
    right = float(np.float32(roi.center_x) + np.float32(roi.side) / 2)
    bottom = float(np.float32(roi.center_y) + np.float32(roi.side) / 2)
    src = np.array([(left, bottom), (left, top), (right, top), (right, bottom)], np.float32)
    dst = np.array([(0.0, size), (0.0, 0.0), (size, 0.0), (size, size)], np.float32)
    # OpenCV's own solver: its last-bit rounding decides pixels that fall exactly halfway on the
    # 1/32 grid (odd picture sizes), and MediaPipe's tensors agree with it there
    return cv2.getPerspectiveTransform(src, dst)


def source_coordinates(inverse: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per tensor pixel, the source position in 1/32 pixels (int64, (S, S) each), computed as
    warpPerspective does: rows in double from each 64-column tile's first column, rounded to
    nearest-even, saturated to int."""
    m = inverse.ravel()
    columns = np.arange(size)
    tile_start = (columns // _BLOCK_WIDTH * _BLOCK_WIDTH).astype(np.float64)
    offset = (columns % _BLOCK_WIDTH).astype(np.float64)
    rows = np.arange(size, dtype=np.float64)[:, None]
    x0 = m[0] * tile_start + m[1] * rows + m[2]
    y0 = m[3] * tile_start + m[4] * rows + m[5]
    w0 = m[6] * tile_start + m[7] * rows + m[8]
    w = w0 + m[6] * offset
    with np.errstate(divide="ignore"):
        w = np.where(w != 0.0, _INTER_TAB_SIZE / w, 0.0)
    limit = (float(np.iinfo(np.int32).min), float(np.iinfo(np.int32).max))
    fx = np.clip((x0 + m[0] * offset) * w, *limit)
    fy = np.clip((y0 + m[3] * offset) * w, *limit)
    return np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)


@dataclass(frozen=True, eq=False)
class WarpPlan:
    """How a ``width`` x ``height`` picture becomes the ``size`` x ``size`` tensor picture.

    ``rows`` and ``cols`` (sorted) are the source rows and columns the warp reads, widened to
    whole even/odd pairs so that a 4:2:0 frame can be cut there without splitting a chroma sample.
    """

    width: int
    height: int
    size: int
    roi: SquareRoi
    rows: np.ndarray
    cols: np.ndarray
    full_map: np.ndarray  # (S, S, 2) int16: source x, y of each tensor pixel's top-left neighbour
    sampled_map: np.ndarray  # the same in the (len(rows), len(cols)) picture of just those pixels
    fractions: np.ndarray  # (S, S) uint16: fy * 32 + fx, the row of OpenCV's weight table

    def warp(self, rgb: np.ndarray) -> np.ndarray:
        """The (S, S, 3) uint8 tensor picture from the whole (H, W, 3) RGB picture."""
        _check_picture(rgb, (self.height, self.width, 3))
        return self._remap(rgb, self.full_map)

    def warp_sampled(self, sampled: np.ndarray) -> np.ndarray:
        """The tensor picture from only the plan's ``rows`` x ``cols`` of the RGB picture."""
        _check_picture(sampled, (len(self.rows), len(self.cols), 3))
        return self._remap(sampled, self.sampled_map)

    def _remap(self, picture: np.ndarray, source: np.ndarray) -> np.ndarray:
        return cv2.remap(
            picture, source, self.fractions, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )


def _check_picture(picture: np.ndarray, shape: tuple[int, int, int]) -> None:
    if picture.shape != shape or picture.dtype != np.uint8:
        raise ValueError(f"expected a {shape} uint8 RGB picture, got {picture.shape} {picture.dtype}")


def _pairs(read: np.ndarray, limit: int) -> np.ndarray:
    """The coordinates in ``read`` that lie in [0, limit), each widened to its even/odd pair, sorted."""
    even = read[(read >= 0) & (read < limit)] & ~1
    wanted = np.zeros(limit + 1, bool)  # marks, not np.unique: that would import numpy.ma (~5 ms)
    wanted[even] = True
    wanted[even + 1] = True  # an odd-sized picture's last even coordinate has no partner: cut off
    return np.flatnonzero(wanted[:limit])


def _compact(coords: np.ndarray, kept: np.ndarray, limit: int) -> np.ndarray:
    """Source coordinates of top-left neighbours, moved into the picture made of ``kept`` only.

    Inside: the position in ``kept`` (the right/bottom neighbour follows it there too); -1 stays
    -1 (only the right neighbour is inside); anything else lands wholly outside, as it was."""
    inside = (coords >= 0) & (coords < limit)
    position = np.searchsorted(kept, coords.clip(0, limit - 1))
    return np.where(inside, position, np.where(coords == -1, -1, np.where(coords < 0, -2, len(kept))))


@functools.lru_cache(maxsize=16)
def warp_plan(width: int, height: int, size: int) -> WarpPlan:
    """The plan for a ``width`` x ``height`` picture into a ``size`` x ``size`` tensor (cached)."""
    roi = SquareRoi.around(width, height)
    ok, inverse = cv2.invert(roi_to_tensor_matrix(roi, size))  # what warpPerspective does first
    if not ok:
        raise ValueError(f"no inverse for the {width}x{height} -> {size} transform")
    fx, fy = source_coordinates(inverse, size)
    # OpenCV keeps the whole-pixel part as a short and the 1/32 fractions as a table row
    sx = np.clip(fx >> _INTER_BITS, -32768, 32767)
    sy = np.clip(fy >> _INTER_BITS, -32768, 32767)
    fractions = (fy & (_INTER_TAB_SIZE - 1)) * _INTER_TAB_SIZE + (fx & (_INTER_TAB_SIZE - 1))
    rows = _pairs(np.concatenate([sy.ravel(), sy.ravel() + 1]), height)
    cols = _pairs(np.concatenate([sx.ravel(), sx.ravel() + 1]), width)
    sampled = np.stack([_compact(sx, cols, width), _compact(sy, rows, height)], axis=-1)
    return WarpPlan(
        width=width,
        height=height,
        size=size,
        roi=roi,
        rows=rows,
        cols=cols,
        full_map=np.stack([sx, sy], axis=-1).astype(np.int16),
        sampled_map=sampled.astype(np.int16),
        fractions=fractions.astype(np.uint16),
    )


def tensor_values(picture: np.ndarray) -> np.ndarray:
    """uint8 tensor picture -> float32 model input in [-1, 1], as MediaPipe's convertTo makes it."""
    return cv2.LUT(picture, VALUE_TABLE)
