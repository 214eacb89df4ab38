"""Start-up check that the installed OpenCV computes what streamproc was checked with.

MediaPipe-exactness rests on OpenCV's fixed-point ``remap`` blend and the last bit of
``getPerspectiveTransform``/``invert`` (the BlazeFace input warp, ``image_to_tensor.py``), and a
classifier's enlarged crops on its ``resize``. OpenCV has changed such arithmetic between releases
without a word, so each operation runs once on a small fixed probe and its bytes are compared with
what opencv-python-headless 5.0.0 (the locked version, under which the MediaPipe and MobileNet
references pass) produced. A difference stops the run with one line naming OpenCV's version,
instead of results that drift silently. Shrinking resizes need no check: streamproc computes
them itself (``area_resize.py``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

import cv2
import numpy as np

from streamproc.core.errors import StreamprocError
from streamproc.inference.image_to_tensor import SquareRoi, roi_to_tensor_matrix

CHECKED_VERSION = "5.0.0"


def _probe_picture(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(20261207).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _remap() -> bytes:
    """Every one of the 32x32 sub-pixel weight pairs, neighbours inside and outside the picture."""
    rng = np.random.default_rng(7)
    coords = rng.integers(-2, 14, (32, 32, 2)).astype(np.int16)
    fractions = np.arange(1024, dtype=np.uint16).reshape(32, 32)
    picture = _probe_picture(13, 11)
    return cv2.remap(picture, coords, fractions, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT).tobytes()


def _perspective() -> bytes:
    """Odd and even picture sides, where the solver's last bit decides halfway source pixels."""
    parts = []
    for width, height, size in ((1279, 719, 128), (719, 1279, 192), (641, 481, 128), (1280, 720, 192)):
        matrix = roi_to_tensor_matrix(SquareRoi.around(width, height), size)
        _, inverse = cv2.invert(matrix)
        parts += [matrix.tobytes(), inverse.tobytes()]
    return b"".join(parts)


def _resize_linear() -> bytes:
    return cv2.resize(_probe_picture(23, 37), (224, 224), interpolation=cv2.INTER_LINEAR).tobytes()


def _resize_area_mixed() -> bytes:
    """One direction shrunk, the other enlarged: OpenCV's area mode, not computed here."""
    return cv2.resize(_probe_picture(100, 300), (224, 224), interpolation=cv2.INTER_AREA).tobytes()


# operation -> (probe, SHA-256 of its bytes under opencv-python-headless 5.0.0.93)
PROBES: dict[str, tuple[Callable[[], bytes], str]] = {
    "remap (BlazeFace input warp)": (
        _remap,
        "12b9abbe92d2c4297dda7708ae5ad13362a40419d307101e9e7106409ea9ce46",
    ),
    "getPerspectiveTransform/invert (BlazeFace input warp)": (
        _perspective,
        "f8aaefa14c68e2eabd8fcc6c5fddb495ca8944c2b6a83aa8f8965992dab2c447",
    ),
    "resize INTER_LINEAR (enlarged classifier input)": (
        _resize_linear,
        "85892db3ca429d6b106e296c4ddd8b6254ef0ab4137a6cfa03afe3bd11c1b4f8",
    ),
    "resize INTER_AREA (classifier input enlarged one way)": (
        _resize_area_mixed,
        "3127a3afc6a68de3d24db659aae372f0bfb33f2b5e5c166e232871cfb86a1a63",
    ),
}


def _digest(probe: Callable[[], bytes]) -> str:
    return hashlib.sha256(probe()).hexdigest()


def check(probes: dict[str, tuple[Callable[[], bytes], str]]) -> None:
    """Raise one line naming OpenCV's version and every operation whose probe bytes differ."""
    differing = [name for name, (probe, want) in probes.items() if _digest(probe) != want]
    if differing:
        raise StreamprocError(
            f"OpenCV {cv2.__version__} computes {'; '.join(differing)} differently from OpenCV "
            f"{CHECKED_VERSION}, which streamproc's exact results were checked with: install the locked "
            "versions (scripts/setup.sh, requirements/) or opencv-python-headless<5.1"
        )


@functools.cache
def verify_opencv() -> None:
    """``check`` on the recorded probes, once per process (a few milliseconds)."""
    check(PROBES)
