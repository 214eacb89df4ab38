"""Photos as input: a folder, a glob pattern (``'shots/*.jpg'``) or one image file; each image is one
frame of the source, with its own size and file name (``frame.stream.url``)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from streamproc.capture.base import Source, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.capture.patterns import expand
from streamproc.capture.urls import IMAGE_SUFFIXES, is_glob
from streamproc.core.errors import InputError
from streamproc.core.frames import Frame, SourceState, StreamInfo
from streamproc.core.pictures import ArrayPicture
from streamproc.media.still_images import ImageError, decode_image

log = logging.getLogger(__name__)

MAX_PIXELS = 200_000_000  # a photo larger than this is refused rather than decoded (memory)


def image_files(url: str) -> list[Path]:
    """The images a folder, glob pattern or file names, in name order (folders: not recursive)."""
    if is_glob(url):
        found = expand(url)  # bounded: '**' walks each folder once, links to '.' included
    elif Path(url).is_dir():
        found = list(Path(url).iterdir())
    else:
        return [Path(url)]
    return sorted(path for path in found if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


class ImageSource(Source):
    """Decodes each image once, in name order; a broken image is logged and fails the source at the
    end (the other images are still processed)."""

    def __init__(self, source_id: str, url: str, listener: StatusListener | None = None) -> None:
        super().__init__(source_id, url, listener)
        self.files: list[Path] = []
        self.broken: list[str] = []
        self.info: StreamInfo | None = None

    def open(self) -> StreamInfo:
        self.files = image_files(self.url)
        if not self.files:
            raise InputError(f"input {self.url} names no image (.jpg, .jpeg, .png, .webp, .bmp): check it")
        missing = next((path for path in self.files if not path.is_file()), None)
        if missing is not None:
            raise InputError(f"input {missing} does not exist: check the path")
        self.info = StreamInfo(
            source_id=self.source_id,
            url=self.url,
            width=0,  # each photo has its own size, in its frame's stream info
            height=0,
            fps=1.0,
            time_base=Fraction(1),
            total_frames=len(self.files),
            still=True,
        )
        return self.info

    def _capture(self, buffer: FrameBuffer) -> None:
        assert self.info is not None, "open() first"
        self.set_state(SourceState.STREAMING)
        for path in self.files:
            if self.stopping:
                return
            try:
                bgr, _ = decode_image(path.read_bytes(), MAX_PIXELS)
            except (OSError, ImageError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                log.warning("source %s: %s skipped: %s", self.source_id, path, reason)
                self.broken.append(path.name)
                continue
            height, width = bgr.shape[:2]
            stream = replace(self.info, url=str(path), width=width, height=height, total_frames=1)
            frame = Frame(stream, self.frames_decoded, None, None, time.time(), ArrayPicture(bgr))
            if not self.emit(frame):
                return
            self.frames_decoded += 1
        if self.broken:
            names = ", ".join(self.broken[:5]) + (" ..." if len(self.broken) > 5 else "")
            self.set_state(SourceState.FAILED, f"{len(self.broken)} image(s) could not be read: {names}")
        else:
            self.set_state(SourceState.STOPPED, f"{self.frames_decoded} images")
