"""Area (box) downscaling with OpenCV 4.x/5.0's ``INTER_AREA`` arithmetic, computed here.

The classifiers' declared preprocessing is "area resize", and the quantised MobileNets are so
sensitive that one pixel one level off flips a top-1 (kite_and_cold.jpg: seashore 0.35 becomes
volleyball 0.36). OpenCV's own resize has changed between releases, so streamproc does the
arithmetic itself and the results do not move when OpenCV does:

- integer factors in both directions: the sum of each block, times ``1/area`` in float32, rounded
  to nearest-even; 2x2 blocks round half up (``(sum + 2) >> 2``, OpenCV's vector path);
- otherwise, per direction a table of (source index, float32 weight) per output pixel, the weights
  ``overlap / cell width`` computed in double; a row sums its weighted pixels in float32 in source
  order, the rows of an output row then add up in float32 weighted the same way, rounded to
  nearest-even.

Only downscaling (no direction enlarged) is computed here; ``media.crops.resize_to`` uses OpenCV for
the rest, and ``inference/opencv_check.py`` checks that OpenCV's arithmetic there is the checked one.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass

import numpy as np

_EPSILON = sys.float_info.epsilon  # OpenCV's test for an integer scale factor: DBL_EPSILON


@dataclass(frozen=True, eq=False)
class _Taps:
    """Per output pixel, its source pixels (``index``) and float32 weights; ``used`` marks real taps
    (output pixels have different tap counts: the rest of a row is padding)."""

    index: np.ndarray  # (target, taps) int
    weight: np.ndarray  # (target, taps) float32
    used: np.ndarray  # (target, taps) bool


def _scale(source: int, target: int) -> float:
    """Source pixels per output pixel, as OpenCV derives it: the inverse of the inverse scale (not
    ``source / target``, which differs in the last bit for some sizes)."""
    return 1.0 / (target / source)


@functools.lru_cache(maxsize=64)
def _taps(source: int, target: int) -> _Taps:
    scale = _scale(source, target)
    rows: list[list[tuple[int, float]]] = []
    for out in range(target):
        start = out * scale
        end = start + scale
        cell = min(scale, source - start)
        first, last = math.ceil(start), min(math.floor(end), source - 1)
        first = min(first, last)
        taps = [(first - 1, (first - start) / cell)] if first - start > 1e-3 else []
        taps += [(pixel, 1.0 / cell) for pixel in range(first, last)]
        if end - last > 1e-3:
            taps.append((last, min(end - last, 1.0, cell) / cell))
        rows.append(taps)
    width = max(len(taps) for taps in rows)
    index = np.zeros((target, width), np.intp)
    weight = np.zeros((target, width), np.float32)
    used = np.zeros((target, width), bool)
    for out, taps in enumerate(rows):
        for k, (pixel, alpha) in enumerate(taps):
            index[out, k], weight[out, k], used[out, k] = pixel, alpha, True
    return _Taps(index, weight, used)


def _integer_factor(source: int, target: int) -> int | None:
    scale = _scale(source, target)
    whole = round(scale)
    return whole if abs(scale - whole) < _EPSILON else None


def _block_mean(picture: np.ndarray, width: int, height: int, fx: int, fy: int) -> np.ndarray:
    blocks = picture[: height * fy, : width * fx].reshape(height, fy, width, fx, *picture.shape[2:])
    sums = blocks.sum(axis=(1, 3), dtype=np.int32)
    if fx * fy == 4:
        return ((sums + 2) >> 2).astype(np.uint8)
    mean = sums.astype(np.float32) * np.float32(1.0 / (fx * fy))
    return np.clip(np.rint(mean), 0, 255).astype(np.uint8)


def _weighted(values: np.ndarray, taps: _Taps, axis: int) -> np.ndarray:
    """Sum of the taps along ``axis`` (0 rows, 1 columns), in float32, one tap after another."""
    shape = [1] * values.ndim
    shape[axis] = taps.index.shape[0]
    total = np.take(values, taps.index[:, 0], axis=axis) * taps.weight[:, 0].reshape(shape)
    for k in range(1, taps.index.shape[1]):
        term = np.take(values, taps.index[:, k], axis=axis) * taps.weight[:, k].reshape(shape)
        total = np.where(taps.used[:, k].reshape(shape), total + term, total)
    return total


def area_shrink(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """``picture`` (uint8, (H, W) or (H, W, C)) box-filtered down to ``width`` x ``height``."""
    source_height, source_width = picture.shape[:2]
    if width > source_width or height > source_height or width < 1 or height < 1:
        raise ValueError(f"area_shrink only shrinks: {source_width}x{source_height} -> {width}x{height}")
    if picture.dtype != np.uint8:
        raise ValueError(f"area_shrink takes uint8 pictures, got {picture.dtype}")
    fx, fy = _integer_factor(source_width, width), _integer_factor(source_height, height)
    if fx is not None and fy is not None:
        return _block_mean(picture, width, height, fx, fy)
    rows = _weighted(picture.astype(np.float32), _taps(source_width, width), axis=1)
    total = _weighted(rows, _taps(source_height, height), axis=0)
    return np.clip(np.rint(total), 0, 255).astype(np.uint8)
