"""Timestamps for an encoder, repaired rather than trusted: strictly increasing whatever arrives."""

from __future__ import annotations

from fractions import Fraction

MAX_GAP_S = 10.0  # a larger step forward is a jump in the input's clock, not a pause in the picture


class Timeline:
    """Turns the timestamps frames arrive with into ones a muxer accepts, keeping the input's timing.

    A frame keeps its own timestamp (variable frame rate stays variable) unless it is missing, not
    later than the previous one (duplicated, out of order) or jumps by more than MAX_GAP_S either
    way: then it gets the previous timestamp plus one nominal frame interval, and after a jump later
    frames keep their spacing from there. ``repairs`` counts the frames that needed it.
    """

    def __init__(self, time_base: Fraction, fps: float) -> None:
        # one nominal frame interval in time-base units, at least one tick
        self.step = max(1, round(1 / (fps * time_base))) if fps > 0 else 1
        self.max_gap = max(self.step, round(MAX_GAP_S / time_base))
        self.repairs = 0
        self._last: int | None = None
        self._shift = 0  # added to every timestamp since the input's clock jumped

    def next(self, pts: int | None) -> int:
        """The timestamp to encode a frame with, given the one it came with (None: none)."""
        if self._last is None:
            self.repairs += pts is None
            self._last = pts if pts is not None else 0
            return self._last
        fixed = self._last + self.step
        if pts is None:
            self.repairs += 1
        else:
            shifted = pts + self._shift
            gap = shifted - self._last
            if 0 < gap <= self.max_gap:
                fixed = shifted
            else:  # repeated or late: this frame only; a jump: later frames follow on from here
                self.repairs += 1
                if abs(gap) > self.max_gap:
                    self._shift += fixed - shifted
        self._last = fixed
        return fixed
