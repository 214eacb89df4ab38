"""Media times of one live connection from the stream's own clock, every frame included.

Over RTSP the first frame of a connection often has no timestamp (FFmpeg cannot place it until the
next packet arrives), and while the decoder learns the stream's frame reordering a frame may come
out with a time before its predecessor. Cameras also skip frames and step their clocks. This
clock gives every frame a time in seconds that strictly increases, taken from the stream where the
stream has one; a frame without one is placed one frame duration after (or, the first frame,
before) its neighbour.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Generic, TypeVar

T = TypeVar("T")


class MediaClock(Generic[T]):
    """Turns (item, pts, duration) in ``time_base`` units into (item, seconds), in decoding order.

    Items without a time before the first timed one are held back (a frame or two at most) and
    released with the first timed item, placed one duration apart before it.
    """

    def __init__(self, time_base: Fraction, fps: float) -> None:
        self._time_base = time_base
        self._default_step = 1.0 / fps if fps > 0 else 0.04
        self._last: float | None = None
        self._held: list[tuple[T, float]] = []
        self.repaired = 0  # times that were missing or went back and were replaced

    def place(self, item: T, pts: int | None, duration: int | None) -> Iterator[tuple[T, float]]:
        """The items that can be timed now, with their media time in seconds."""
        step = float(duration * self._time_base) if duration else self._default_step
        if pts is None and self._last is None:
            self._held.append((item, step))
            self.repaired += 1
            return
        if pts is None:
            assert self._last is not None
            seconds = self._last + step
            self.repaired += 1
        else:
            seconds = float(pts * self._time_base)
            if self._last is not None and seconds <= self._last:
                seconds = self._last + step
                self.repaired += 1
        if self._held:
            yield from self._release(seconds)
        self._last = seconds
        yield item, seconds

    def _release(self, first_timed: float) -> Iterator[tuple[T, float]]:
        """Held items, spaced by their durations and ending one step before ``first_timed``."""
        offsets, total = [], 0.0
        for _, step in reversed(self._held):
            total += step
            offsets.append(total)
        for (held, _), offset in zip(self._held, reversed(offsets), strict=True):
            yield held, first_timed - offset
        self._held.clear()
