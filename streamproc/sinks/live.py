"""Live view sink: keeps each source's latest result; JPEG encoding happens only for viewers.

``handle`` only swaps a reference, so the sink costs nothing while nobody watches. The HTTP server
asks :meth:`LiveViewSink.jpeg` from its request threads; a frame is drawn and encoded at most once,
however many viewers share it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from streamproc.core.frames import FrameResult
from streamproc.media.crops import encode_jpeg
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan
from streamproc.sinks.base import Sink
from streamproc.sinks.draw import draw_detections


@dataclass(frozen=True)
class LiveFrame:
    """An annotated, JPEG-encoded frame of one source."""

    source_id: str
    index: int
    pts: float | None
    jpeg: bytes


class LiveViewSink(Sink):
    """The latest annotated frame per source, encoded on demand."""

    name = "live-view"

    def __init__(self, jpeg_quality: int = 80) -> None:
        self.jpeg_quality = jpeg_quality
        self.frames_encoded = 0
        self._latest_lock = threading.Lock()  # the sink thread writes, the server reads
        self._latest: dict[str, FrameResult] = {}
        self._encoded: dict[str, tuple[FrameResult, LiveFrame]] = {}
        self._lock = threading.Lock()  # guards the counters and the lock table
        self._source_locks: dict[str, threading.Lock] = {}
        self._viewers: dict[str, int] = {}
        self._bgr: BgrReader | None = None

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR})

    def open(self, pixels: PixelPlan) -> None:
        self._bgr = pixels.bgr(self)

    def handle(self, result: FrameResult) -> None:
        with self._latest_lock:
            self._latest[result.frame.source_id] = result

    def latest(self, source_id: str) -> FrameResult | None:
        with self._latest_lock:
            return self._latest.get(source_id)

    def jpeg(self, result: FrameResult) -> LiveFrame:
        """Draw and encode a result, reusing the encoding when another viewer already asked for it."""
        source_id = result.frame.source_id
        with self._lock:
            source_lock = self._source_locks.setdefault(source_id, threading.Lock())
        with source_lock:  # one encoder per source; viewers of other sources do not wait
            cached = self._encoded.get(source_id)
            if cached is not None and cached[0] is result:
                return cached[1]
            assert self._bgr is not None, "open() first"
            image = draw_detections(self._bgr(result.frame).copy(), result.detections)
            jpeg = encode_jpeg(image, self.jpeg_quality)
            frame = LiveFrame(source_id, result.frame.index, result.frame.pts, jpeg)
            self._encoded[source_id] = (result, frame)
            with self._lock:
                self.frames_encoded += 1
            return frame

    @contextmanager
    def watching(self, source_id: str) -> Iterator[None]:
        """Count a viewer of ``source_id`` for as long as the block runs."""
        with self._lock:
            self._viewers[source_id] = self._viewers.get(source_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._viewers[source_id] -= 1

    def viewers(self) -> dict[str, int]:
        with self._lock:
            return dict(self._viewers)
