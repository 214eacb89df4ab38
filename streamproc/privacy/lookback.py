"""Holding a redacting sink's last frames back, so that a face first seen now is also covered on
the frames before, where it was coming in (see :mod:`streamproc.privacy.stage`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from streamproc.core.frames import FrameResult
from streamproc.privacy.cover import Region
from streamproc.privacy.regions import as_regions, cover_of


@dataclass
class Held:
    """A frame's result and every region to hide on it: its own and those later frames added."""

    result: FrameResult
    regions: list[Region] = field(default_factory=list)


class Lookback:
    """Per source, the last ``frames`` results; each new one adds its ``cover_back`` to them."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self._held: dict[str, deque[Held]] = {}

    def push(self, result: FrameResult) -> list[Held]:
        """Take a result; returns those now old enough to be written, oldest first."""
        held = self._held.setdefault(result.frame.source_id, deque())
        back = as_regions(result.detections.cover_back)
        if back:
            for earlier in held:
                earlier.regions.extend(back)
        held.append(Held(result, cover_of(result.detections)))
        return [held.popleft() for _ in range(len(held) - self.frames)]

    @property
    def held(self) -> int:
        """Frames held back, of every source."""
        return sum(len(held) for held in self._held.values())

    def drain(self) -> list[Held]:
        """Everything still held, each source's oldest first: the run is over."""
        return [held for key in list(self._held) for held in self._held.pop(key)]
