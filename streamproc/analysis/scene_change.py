"""Which frames of a source get classified whole: every N frames, the codec's key frames, or when
the scene changes (a small grey thumbnail differs enough from the last classified one)."""

from __future__ import annotations

import cv2
import numpy as np

from streamproc.config.settings import KeyframeSettings
from streamproc.core.frames import Frame
from streamproc.media.pixels import ScaledRgbReader

THUMBNAIL_WIDTH = 64  # enough to see a scene change, too small to notice noise or a moving face


def thumbnail(frame: Frame, scaled_rgb: ScaledRgbReader) -> np.ndarray:
    """A small grey picture of the frame, values 0..1."""
    height = max(1, round(THUMBNAIL_WIDTH * frame.height / max(frame.width, 1)))
    rgb = scaled_rgb(frame, THUMBNAIL_WIDTH, height)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / np.float32(255.0)


class KeyframeTrigger:
    """Decides, frame by frame for one source, whether to classify the whole frame and why."""

    def __init__(self, settings: KeyframeSettings) -> None:
        self.settings = settings
        self._last_frame: int | None = None
        self._last_thumbnail: np.ndarray | None = None

    def check(self, frame: Frame, scaled_rgb: ScaledRgbReader) -> str | None:
        """The trigger (``every_n``, ``keyframe``, ``scene_change``) when this frame is due, else None."""
        settings = self.settings
        if settings.policy == "every_n":
            return "every_n" if frame.index % settings.every_n == 0 else None
        if self._last_frame is not None and frame.index - self._last_frame < settings.min_gap_frames:
            return None
        if settings.policy == "codec_keyframes":
            trigger = "keyframe" if frame.keyframe else None
        else:
            small = thumbnail(frame, scaled_rgb)
            previous = self._last_thumbnail
            changed = previous is None or previous.shape != small.shape
            if not changed:
                changed = float(np.abs(small - previous).mean()) >= settings.scene_threshold
            trigger = "scene_change" if changed else None
            if trigger:
                self._last_thumbnail = small
        if trigger:
            self._last_frame = frame.index
        return trigger
