"""Face crops (for snapshots and the classifier) and the JPEG snapshot files of tracks."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import cv2
import numpy as np

from streamproc.config import SnapshotSettings
from streamproc.draw import BOX_COLOUR
from streamproc.errors import OutputError
from streamproc.files import atomic_writer


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


def safe_name(text: str) -> str:
    """A file-name-safe form of a source or track id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "_"


class SnapshotWriter:
    """Saves a track's best face as ``{dir}/{source}/{track_id}.jpg`` (overwritten as it improves),
    and with ``full_frame`` the whole frame with the face boxed as ``{track_id}-frame.jpg``."""

    def __init__(self, settings: SnapshotSettings) -> None:
        self.settings = settings

    def open(self) -> None:
        """Fail at start-up when the folder cannot be created or written."""
        folder = self.settings.dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise OutputError(
                f"cannot write snapshots to {folder}: {exc.strerror}: choose another snapshots.dir"
            ) from None

    def crop(self, bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The snapshot picture of a face: square crop, resized to ``size`` when set."""
        crop = square_crop(bgr, box, self.settings.margin)
        size = self.settings.size
        if size and crop.shape[0] != size:
            interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
            crop = cv2.resize(crop, (size, size), interpolation=interpolation)
        return crop

    def encode(self, bgr: np.ndarray) -> bytes:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.settings.quality])
        if not ok:
            raise OutputError("JPEG encoding of a snapshot failed")
        return data.tobytes()

    def save(
        self, source_id: str, track_id: str, crop: np.ndarray, frame: np.ndarray | None, box: np.ndarray
    ) -> tuple[Path, Path | None, bytes]:
        """Write the crop (and the boxed frame); returns both paths and the crop's JPEG bytes."""
        folder = self.settings.dir / safe_name(source_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            jpeg = self.encode(crop)
            path = folder / f"{safe_name(track_id)}.jpg"
            with atomic_writer(path) as stream:
                stream.write(jpeg)
            frame_path = None
            if frame is not None and self.settings.full_frame:
                boxed = frame.copy()
                x1, y1, x2, y2 = (round(float(v)) for v in box)
                thickness = max(2, round(min(boxed.shape[:2]) / 250))
                cv2.rectangle(boxed, (x1, y1), (x2, y2), BOX_COLOUR, thickness, cv2.LINE_AA)
                frame_path = folder / f"{safe_name(track_id)}-frame.jpg"
                with atomic_writer(frame_path) as stream:
                    stream.write(self.encode(boxed))
        except OSError as exc:
            raise OutputError(f"cannot write snapshot in {folder}: {exc.strerror}") from None
        return path, frame_path, jpeg
