"""Photo inputs written back out (``--out-images DIR``): each photo under its own name and in its own
format, redacted (``redact``) or with its faces boxed.

The pixels are the decoded ones: the EXIF orientation is already applied (the picture is stored
upright), and nothing of the input's metadata is carried over, so GPS position, camera serial and
capture time are gone. Each file is written whole or not at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamproc.config.settings import ImagesSinkSettings
from streamproc.core.atomic_files import atomic_writer
from streamproc.core.errors import OutputError
from streamproc.core.frames import FrameResult
from streamproc.media.crops import encode_image
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan
from streamproc.privacy.cover import cover_bgr
from streamproc.privacy.regions import cover_of
from streamproc.sinks.base import Sink, source_path
from streamproc.sinks.draw import draw_detections

log = logging.getLogger(__name__)

NOT_A_PHOTO = "not a photo"  # a frame of a video or camera: --out-video writes those


class ImagesSink(Sink):
    """Writes each photo of a photo source to ``dir``; frames of videos are counted, not written."""

    def __init__(self, settings: ImagesSinkSettings) -> None:
        self.settings = settings
        self.name = f"images:{settings.dir}"
        self._bgr: BgrReader | None = None
        self._draw_boxes = settings.draw_boxes if settings.draw_boxes is not None else settings.redact is None
        self._written = 0
        self._videos = 0  # frames of videos and cameras: not photos, not written

    @property
    def written(self) -> int:
        return self._written

    @property
    def not_written(self) -> dict[str, int]:
        return {NOT_A_PHOTO: self._videos} if self._videos else {}

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR})

    def open(self, pixels: PixelPlan) -> None:
        self._bgr = pixels.bgr(self)

    def handle(self, result: FrameResult) -> None:
        frame = result.frame
        if not frame.stream.still:
            self._videos += 1
            return
        assert self._bgr is not None, "open() first"
        source = Path(frame.stream.url)
        target = output_path(self.settings.dir, frame.source_id, source)
        if target.exists() and target.samefile(source):  # checked at start-up too; a link made since
            raise OutputError(f"{target} is the input photo itself: not overwritten")
        picture = np.array(self._bgr(frame))  # the reader's array is shared and read-only
        if self.settings.redact is not None:
            cover_bgr(picture, cover_of(result.detections), self.settings.redact)
        if self._draw_boxes:
            draw_detections(picture, result.detections)
        if self.settings.existing == "refuse" and target.exists():
            raise OutputError(f"{target} exists and existing outputs are refused: not overwritten")
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(target) as stream:
            stream.write(encode_image(picture, source.suffix, self.settings.quality))
        self._written += 1

    def close(self) -> None:
        log.info("%s: %d photos written to %s", self.name, self._written, self.settings.dir)
        if self._videos:
            log.warning(
                "%s: %d video frames not written (--out-images writes photo inputs; use --out-video)",
                self.name,
                self._videos,
            )


def output_path(folder: Path, source_id: str, photo: Path) -> Path:
    """Where the sink writes ``photo``: under its own name in the (per-source) folder."""
    return source_path(folder, source_id) / photo.name
