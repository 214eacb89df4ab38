"""Photos as input: a folder, a glob pattern (``'shots/*.jpg'``), a list file (``photos.txt``: one
path a line) or one image file; each image is one frame of the source, with its own size and file
name (``frame.stream.url``). A photo's frame number is its place in the collection, so a part of a
collection (a distributed run's shard) numbers its photos as the whole collection would."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from streamproc.capture.base import Source, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.capture.patterns import expand
from streamproc.capture.urls import IMAGE_SUFFIXES, LIST_SUFFIXES, display_url, is_glob
from streamproc.core.errors import InputError
from streamproc.core.frames import Frame, SourceState, StreamInfo
from streamproc.core.pictures import ArrayPicture
from streamproc.media.still_images import ImageError, decode_image

log = logging.getLogger(__name__)

MAX_PIXELS = 200_000_000  # a photo larger than this is refused rather than decoded (memory)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def image_files(url: str) -> list[Path]:
    """The images a folder, glob pattern, list file or file names: folders and patterns in name
    order (not recursive), a list in its own order."""
    if is_glob(url):
        found = expand(url)  # bounded: '**' walks each folder once, links to '.' included
    elif Path(url).is_dir():
        found = list(Path(url).iterdir())
    elif Path(url).suffix.lower() in LIST_SUFFIXES:
        return listed_files(Path(url))
    else:
        return [Path(url)]
    return sorted(path for path in found if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def listed_files(path: Path) -> list[Path]:
    """The photos a list file names, one a line, in its order. Blank lines and lines starting with
    '#' are skipped; relative paths are relative to the list's folder. A listed photo that is missing
    is skipped and reported like a broken one, when its turn comes."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"input {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"input {path} is not a text file naming photos, one path a line") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if _SCHEME.match(name):
            raise InputError(
                f"input {path}, line {number}: {display_url(name)} is a url; photos are read from paths"
                " (download them first)"
            )
        found.append(path.parent / name)  # an absolute name stays as it is
    return found


def end_state(decoded: int, broken: Sequence[str]) -> tuple[SourceState, str]:
    """How a collection ends: failed, naming the first broken photos, or stopped with its count."""
    if broken:
        names = ", ".join(broken[:5]) + (" ..." if len(broken) > 5 else "")
        return SourceState.FAILED, f"{len(broken)} image(s) could not be read: {names}"
    return SourceState.STOPPED, f"{decoded} images"


class ImageSource(Source):
    """Decodes each image once, in name order; a broken image is logged and fails the source at the
    end (the other images are still processed). ``part`` limits it to some of the collection's
    photos, the first of which is photo number ``first`` of the collection."""

    def __init__(
        self,
        source_id: str,
        url: str,
        listener: StatusListener | None = None,
        part: Sequence[Path] | None = None,
        first: int = 0,
    ) -> None:
        super().__init__(source_id, url, listener)
        self.part, self.first = part, first
        self.files: list[Path] = []
        self.broken: list[str] = []
        self.info: StreamInfo | None = None

    def open(self) -> StreamInfo:
        self.files = list(self.part) if self.part is not None else image_files(self.url)
        if not self.files:
            raise InputError(f"input {self.url} names no image (.jpg, .jpeg, .png, .webp, .bmp): check it")
        if self.files == [Path(self.url)] and not self.files[0].is_file():
            raise InputError(f"input {self.url} does not exist: check the path")
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
        for number, path in enumerate(self.files, self.first):
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
            frame = Frame(stream, number, None, None, time.time(), ArrayPicture(bgr))
            if not self.emit(frame):
                return
            self.frames_decoded += 1
        self.set_state(*end_state(self.frames_decoded, self.broken))
