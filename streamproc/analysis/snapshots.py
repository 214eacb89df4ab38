"""Track snapshots: the picture of a face's best view, and where its JPEG files go.

The best-view stage (:mod:`streamproc.stages.best_views`) crops the picture on the inference
thread (the frame is gone by the next event); the snapshot sink (:mod:`streamproc.sinks.snapshots`)
encodes and writes the files on its own thread. Paths are known before the files exist, so events
can name them.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

from streamproc.config.settings import SnapshotSettings
from streamproc.core.events import Snapshot
from streamproc.media.crops import square_crop


def safe_name(text: str) -> str:
    """A file-name-safe form of a source or track id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "_"


def snapshot_paths(settings: SnapshotSettings, source_id: str, track_id: str) -> Snapshot:
    """``{dir}/{source}/{track_id}.jpg``, and ``{track_id}-frame.jpg`` with ``full_frame``."""
    folder = settings.dir / safe_name(source_id)
    frame_path = folder / f"{safe_name(track_id)}-frame.jpg" if settings.full_frame else None
    return Snapshot(folder / f"{safe_name(track_id)}.jpg", frame_path)


def snapshot_picture(bgr: np.ndarray, box: np.ndarray, settings: SnapshotSettings) -> np.ndarray:
    """The snapshot picture of a face: square crop with margin, resized to ``size`` when set."""
    crop = square_crop(bgr, box, settings.margin)
    size = settings.size
    if size and crop.shape[0] != size:
        interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (size, size), interpolation=interpolation)
    return crop
