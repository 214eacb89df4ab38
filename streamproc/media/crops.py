"""Small picture helpers shared by stages, sinks and reports: face crops and image encoding."""

from __future__ import annotations

import cv2
import numpy as np

from streamproc.core.errors import OutputError
from streamproc.media.area_resize import area_shrink


def square_crop(image: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    """The square around a face box, ``margin`` of its size added on each side.

    Parts outside the picture are black, so the face stays centred whatever the edge cuts off.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    size = max(1, round(side))
    height, width = image.shape[:2]
    sx1, sy1 = max(left, 0), max(top, 0)
    sx2, sy2 = min(left + size, width), min(top + size, height)
    if sx2 <= sx1 or sy2 <= sy1:
        return np.zeros((size, size, 3), image.dtype)
    inside = image[sy1:sy2, sx1:sx2]
    pad = (sy1 - top, top + size - sy2, sx1 - left, left + size - sx2)
    if any(pad):
        return cv2.copyMakeBorder(inside, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.ascontiguousarray(inside)


def context_crop(image: np.ndarray, box: np.ndarray | list[float], margin: float) -> np.ndarray | None:
    """The box widened by ``margin`` of its size on each side, clipped to the picture (a view);
    None when nothing of it lies inside."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = image.shape[:2]
    left, top = max(int(x1 - mx), 0), max(int(y1 - my), 0)
    right, bottom = min(int(x2 + mx) + 1, width), min(int(y2 + my) + 1, height)
    if right <= left or bottom <= top:
        return None
    return image[top:bottom, left:right]


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR picture; OutputError in the (impossible in practice) case cv2 fails."""
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OutputError(f"JPEG encoding of a {bgr.shape[1]}x{bgr.shape[0]} picture failed")
    return data.tobytes()


_QUALITY_FLAGS = {
    "jpeg": cv2.IMWRITE_JPEG_QUALITY,
    "jpg": cv2.IMWRITE_JPEG_QUALITY,
    "webp": cv2.IMWRITE_WEBP_QUALITY,
}
_WRITTEN = ("jpeg", "jpg", "png", "webp", "bmp")


def encode_image(bgr: np.ndarray, kind: str, quality: int) -> bytes:
    """The picture as a JPEG, PNG, WebP or BMP file (``kind``: a format name or a file suffix such as
    '.png'; anything else is JPEG), with no metadata at all."""
    name = kind.lower().lstrip(".")
    name = name if name in _WRITTEN else "jpeg"
    flag = _QUALITY_FLAGS.get(name)
    ok, data = cv2.imencode(f".{name}", bgr, [flag, int(quality)] if flag is not None else [])
    if not ok:
        raise OutputError(f"{name.upper()} encoding of a {bgr.shape[1]}x{bgr.shape[0]} picture failed")
    return data.tobytes()


def resize_to(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area interpolation when shrinking (no aliasing), bilinear when enlarging.

    Shrinking in both directions (whole pictures into a classifier) is computed by streamproc
    itself (``media/area_resize.py``), so the classifiers' inputs do not move with OpenCV's releases."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    if rgb.shape[1] >= width and rgb.shape[0] >= height:
        return area_shrink(rgb, width, height)
    shrinking = rgb.shape[1] > width or rgb.shape[0] > height
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
