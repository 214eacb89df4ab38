"""FFmpeg's own log lines, caught per capture thread and turned into per-source counts.

FFmpeg says what went wrong on a stream only in its log: "RTP: missed 3 packets" (UDP loss),
"concealing 120 DC, 120 AC, 120 MV errors" (a damaged picture). PyAV can hand those lines to
Python, and :class:`av.logging.Capture` collects the ones logged by the current thread, which is
where a live source demuxes and decodes. Lines from other threads stay unshown, as before.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from types import TracebackType

import av.logging

_MISSED = re.compile(r"RTP: missed (\d+) packets")
_enable_lock = threading.Lock()
_enabled = False


def _enable() -> None:
    """Route FFmpeg's warnings and errors to PyAV's callback (once per process)."""
    global _enabled
    with _enable_lock:
        if _enabled:
            return
        # lines not caught by a capture thread stay hidden, as they were before this callback
        logging.getLogger("libav").setLevel(logging.CRITICAL + 1)
        # PyAV folds repeated lines across threads, which would move counts to another source
        av.logging.set_skip_repeated(False)
        level = av.logging.get_level()
        if level is None or level < av.logging.WARNING:
            av.logging.set_level(av.logging.WARNING)
        _enabled = True


@dataclass
class StreamDamage:
    """What one batch of log lines says about the stream."""

    packets_lost: int = 0
    errors: int = 0  # error lines (decoder or demuxer)


class FfmpegLog:
    """``with FfmpegLog() as log:`` catches FFmpeg's lines logged by this thread; ``take`` counts them."""

    def __init__(self) -> None:
        _enable()
        self._capture = av.logging.Capture(local=True)
        self._lines: list[tuple[int, str, str]] = []

    def __enter__(self) -> FfmpegLog:
        self._lines = self._capture.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._capture.__exit__(exc_type, exc, tb)  # type: ignore[arg-type]  # PyAV's stub is narrower

    def take(self) -> StreamDamage:
        """Count and forget the lines caught so far."""
        damage = StreamDamage()
        lines, self._lines[:] = list(self._lines), []
        for level, _name, message in lines:
            missed = _MISSED.search(message)
            if missed:
                damage.packets_lost += int(missed.group(1))
            elif level <= av.logging.ERROR:
                damage.errors += 1
        return damage
