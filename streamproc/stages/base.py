"""The stage interface: what runs after detection, on the inference thread, frame by frame."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from streamproc.core.events import EndReason, Event
from streamproc.core.frames import Detections, Frame
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan

StageOutput = tuple[Detections, tuple[Event, ...]]


class Stage(ABC):
    """One step of analysis. ``process`` gets each frame's detections (as earlier stages left them)
    and returns them, maybe with more columns, plus the events the frame raised; ``finish`` ends
    whatever a source left open when it stops."""

    name: str = "stage"

    def pixel_needs(self) -> frozenset[PixelFormat]:
        """The pixel formats this stage reads (see :mod:`streamproc.media.pixels`)."""
        return frozenset()

    def open(self, pixels: PixelPlan) -> None:  # noqa: B027 - optional hook
        """Take the pixel readers this stage declared."""

    @abstractmethod
    def process(self, frame: Frame, detections: Detections) -> StageOutput: ...

    def finish(self, source_id: str, reason: EndReason) -> list[Event]:
        """The source is over: events that close what it left open (none by default)."""
        return []


class BgrStage(Stage):
    """A stage that reads each frame's full-resolution BGR pixels (to crop faces from them)."""

    _bgr: BgrReader | None = None

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR})

    def open(self, pixels: PixelPlan) -> None:
        self._bgr = pixels.bgr(self)

    def bgr(self, frame: Frame) -> np.ndarray:
        assert self._bgr is not None, "open() first"
        return self._bgr(frame)
