"""The pixel plan: which conversions of the decoded picture a run makes, where, and for whom.

Every stage and sink declares the formats it reads (``pixel_needs``). The plan is made once from
those declarations before the run starts, and it is the only way to read pixels: a consumer asks
the plan for a reader while it opens, and asking for a format it did not declare is an error at
start-up that names it, never a surprise in the middle of a run.

Who converts what, on which thread:

- the detector's input: the capture thread, for every frame (``Detector.prepare``);
- full-resolution BGR: the first reader that asks, once per frame, shared read-only by all;
- a small RGB picture (scene change): the reader's thread, once per frame and size;
- the encoder's yuv420p frame: the reader's thread (the video sink), a fresh copy each time.

When no consumer declared a format, the decoded picture is released on the capture thread as soon
as the detector's input is made; otherwise it lives as long as the frame's result is queued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import av
import numpy as np

from streamproc.core.errors import ConfigError
from streamproc.core.frames import Frame


class PixelFormat(StrEnum):
    BGR = "bgr"  # full resolution, BGR, read-only: draw on a copy
    RGB_SCALED = "rgb_scaled"  # RGB at a size the reader chooses (area averaging)
    YUV420P = "yuv420p"  # a fresh yuv420p VideoFrame at the reader's size: the encoder's input


class PixelConsumer(Protocol):
    """A stage or sink, as far as pixels go."""

    name: str

    def pixel_needs(self) -> frozenset[PixelFormat]:
        """The formats this consumer reads: declared before the run, fixed for it."""
        ...


BgrReader = Callable[[Frame], np.ndarray]
ScaledRgbReader = Callable[[Frame, int, int], np.ndarray]
EncoderFrameReader = Callable[[Frame, int, int], av.VideoFrame]


def _bgr(frame: Frame) -> np.ndarray:
    return frame.cached(("bgr", 0, 0), frame.picture.bgr)


def _rgb_scaled(frame: Frame, width: int, height: int) -> np.ndarray:
    return frame.cached(("rgb", width, height), lambda: frame.picture.rgb(width, height))


def _yuv420p(frame: Frame, width: int, height: int) -> av.VideoFrame:
    return frame.picture.yuv420p(width, height)


class PixelPlanError(ConfigError):
    """A consumer reads a pixel format it did not declare."""


@dataclass(frozen=True)
class PixelPlan:
    """The formats each consumer declared; ``keeps_pictures`` when any consumer reads pixels."""

    needs: dict[str, frozenset[PixelFormat]]

    @classmethod
    def for_consumers(cls, consumers: Iterable[PixelConsumer]) -> PixelPlan:
        needs: dict[str, frozenset[PixelFormat]] = {}
        for consumer in consumers:
            declared = frozenset(consumer.pixel_needs())
            unknown = [f for f in declared if not isinstance(f, PixelFormat)]
            if unknown:
                raise PixelPlanError(
                    f"{consumer.name} declares unknown pixel formats {unknown}:"
                    " use streamproc.media.pixels.PixelFormat"
                )
            needs[consumer.name] = needs.get(consumer.name, frozenset()) | declared
        return cls(needs)

    @property
    def formats(self) -> frozenset[PixelFormat]:
        return frozenset().union(*self.needs.values()) if self.needs else frozenset()

    @property
    def keeps_pictures(self) -> bool:
        return bool(self.formats)

    def bgr(self, consumer: PixelConsumer) -> BgrReader:
        self._check(consumer, PixelFormat.BGR)
        return _bgr

    def rgb_scaled(self, consumer: PixelConsumer) -> ScaledRgbReader:
        self._check(consumer, PixelFormat.RGB_SCALED)
        return _rgb_scaled

    def yuv420p(self, consumer: PixelConsumer) -> EncoderFrameReader:
        self._check(consumer, PixelFormat.YUV420P)
        return _yuv420p

    def _check(self, consumer: PixelConsumer, pixel_format: PixelFormat) -> None:
        if pixel_format not in self.needs.get(consumer.name, frozenset()):
            raise PixelPlanError(
                f"{consumer.name} reads {pixel_format.value} pixels, which this run's pixel plan does not"
                f" include: add PixelFormat.{pixel_format.name} to its pixel_needs()"
            )
