"""Declared preprocessing for TF.js models: resize, colour and value range, as the model was trained.

``bilinear`` is TF.js ``tf.image.resizeBilinear`` with its defaults (no align corners, no half-pixel
centres): source = i * in/out, which OpenCV's INTER_LINEAR (half-pixel centres) does not reproduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from streamproc.media.crops import resize_to

Resize = Literal["bilinear", "area"]
Color = Literal["rgb", "gray"]
ValueRange = Literal["raw", "zero_1", "minus1_1", "mean_std"]

# The luma weights TF.js model zoos (Human's emotion model among them) use for grayscale input.
GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)


def resize_bilinear(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """TF.js ``resizeBilinear(x, [height, width])`` (alignCorners=false, halfPixelCenters=false), float32."""
    pixels = picture.astype(np.float64)
    rows, row_frac = _taps(picture.shape[0], height)
    cols, col_frac = _taps(picture.shape[1], width)
    col_frac = col_frac[None, :, None]
    top = pixels[rows[0]][:, cols[0]] + (pixels[rows[0]][:, cols[1]] - pixels[rows[0]][:, cols[0]]) * col_frac
    bottom = (
        pixels[rows[1]][:, cols[0]] + (pixels[rows[1]][:, cols[1]] - pixels[rows[1]][:, cols[0]]) * col_frac
    )
    return (top + (bottom - top) * row_frac[:, None, None]).astype(np.float32)


def _taps(size_in: int, size_out: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    source = np.arange(size_out, dtype=np.float64) * (size_in / size_out)
    low = np.maximum(0, np.floor(source)).astype(np.intp)
    high = np.minimum(size_in - 1, np.ceil(source)).astype(np.intp)
    return (low, high), source - low


@dataclass(frozen=True)
class Preprocess:
    """How an RGB uint8 picture becomes one input of the model (height, width, channels)."""

    height: int
    width: int
    resize: Resize = "bilinear"
    color: Color = "rgb"
    value_range: ValueRange = "raw"
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.shape[:2] == (self.height, self.width):
            pixels = rgb.astype(np.float32)
        elif self.resize == "bilinear":
            pixels = resize_bilinear(rgb, self.height, self.width)
        else:
            pixels = resize_to(rgb, self.width, self.height).astype(np.float32)
        if self.color == "gray":
            pixels = (pixels * GRAY_WEIGHTS).sum(axis=-1, keepdims=True, dtype=np.float32)
        if self.value_range == "zero_1":
            return pixels / np.float32(255.0)
        if self.value_range == "minus1_1":
            return pixels / np.float32(127.5) - np.float32(1.0)
        if self.value_range == "mean_std":
            mean = np.asarray(self.mean, np.float32)[: self.channels]
            return (pixels - mean) / np.asarray(self.std, np.float32)[: self.channels]
        return pixels
