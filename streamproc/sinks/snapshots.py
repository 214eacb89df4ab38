"""Snapshot sink: writes the JPEG files of each track's best view, named by the track's events.

It consumes events (``BestView`` pixels the best-view stage kept), so encoding and file writes
never hold up inference; a folder that cannot be written fails this sink alone.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence

import cv2

from streamproc.config.settings import SnapshotSettings
from streamproc.core.atomic_files import atomic_writer
from streamproc.core.errors import OutputError
from streamproc.core.events import BestView, Event, Snapshot, TrackEvent
from streamproc.core.frames import FrameResult
from streamproc.media.crops import encode_jpeg
from streamproc.media.pixels import PixelPlan
from streamproc.sinks.base import Sink
from streamproc.sinks.draw import BOX_COLOUR

log = logging.getLogger(__name__)


class SnapshotSink(Sink):
    """Saves ``{dir}/{source}/{track_id}.jpg`` (overwritten as the view improves) and, with
    ``full_frame``, the whole frame with the face boxed as ``{track_id}-frame.jpg``."""

    def __init__(self, settings: SnapshotSettings) -> None:
        self.settings = settings
        self.name = f"snapshots:{settings.dir}"

    def open(self, pixels: PixelPlan) -> None:
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
        log.info("saving the best view of each face track in %s", folder)

    def handle(self, result: FrameResult) -> None:
        """Frames carry nothing for this sink: the pictures come with the events."""

    def handle_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, TrackEvent) and event.view is not None and event.snapshot is not None:
                self._write(event.snapshot, event.view)

    def _write(self, snapshot: Snapshot, view: BestView) -> None:
        folder = snapshot.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_writer(snapshot.path) as stream:
                stream.write(encode_jpeg(view.crop, self.settings.quality))
            if snapshot.frame_path is not None and view.frame is not None:
                boxed = view.frame.copy()
                x1, y1, x2, y2 = (round(float(v)) for v in view.box)
                thickness = max(2, round(min(boxed.shape[:2]) / 250))
                cv2.rectangle(boxed, (x1, y1), (x2, y2), BOX_COLOUR, thickness, cv2.LINE_AA)
                with atomic_writer(snapshot.frame_path) as stream:
                    stream.write(encode_jpeg(boxed, self.settings.quality))
        except OSError as exc:
            raise OutputError(f"cannot write snapshot in {folder}: {exc.strerror}") from None
