"""FFmpeg's own log lines, caught per source and turned into per-source counts.

FFmpeg says what went wrong on a stream only in its log: "RTP: missed 3 packets" (UDP loss),
"concealing 120 DC, 120 AC, 120 MV errors" or "error while decoding MB 53 29" (a damaged picture).
PyAV hands those lines to Python. :class:`av.logging.Capture` collects the ones logged by the
thread that demuxes and decodes; but a decoder with slice or frame threads logs the errors it meets
in slices or frames from its own worker threads, which no capture sees. Those threads are started
when the decoder opens, so :meth:`FfmpegLog.open_decoder` adopts the threads that appear while it
opens one (decoders open one at a time), and their lines reach the same source through Python's
logging, where PyAV sends the lines of threads without a capture. Lines of other threads stay hidden.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import av.logging

_MISSED = re.compile(r"RTP: missed (\d+) packets")
Line = tuple[int, str, str]  # FFmpeg's level, the logging context's name, the message
_enable_lock = threading.Lock()
_enabled = False
_open_lock = threading.Lock()  # one decoder opens at a time, so new threads are that decoder's
_adopted: dict[int, deque[Line]] = {}  # native id of a decoder's worker thread -> its source's lines


def _threads() -> set[int]:
    """Native ids of this process's threads (Linux); empty elsewhere, where worker lines stay hidden."""
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        return set()


class _WorkerLines(logging.Handler):
    """Hands a line logged by an adopted decoder thread to its source; drops the rest."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = _adopted.get(threading.get_native_id())
        if lines is not None:  # only errors pass the logger's level
            lines.append((av.logging.ERROR, record.name, record.getMessage()))


def _enable() -> None:
    """Route FFmpeg's warnings and errors to PyAV's callback (once per process)."""
    global _enabled
    with _enable_lock:
        if _enabled:
            return
        # lines of threads without a capture come here; only adopted decoder threads' errors are kept
        # (their warnings are not damage), the rest stays hidden as before
        libav = logging.getLogger("libav")
        libav.setLevel(logging.ERROR)
        libav.propagate = False
        libav.addHandler(_WorkerLines())
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
    """``with FfmpegLog() as log:`` catches FFmpeg's lines logged by the thread inside the block (and,
    always, by the worker threads of decoders opened with :meth:`open_decoder`); ``take`` counts them."""

    def __init__(self) -> None:
        _enable()
        self._capture: Any = None
        self._lines: list[Line] = []  # caught in the thread that entered last
        self._caught: deque[Line] = deque()  # by adopted threads, and by earlier entries
        self._workers: set[int] = set()

    def __enter__(self) -> FfmpegLog:
        self._caught.extend(self._lines)
        self._capture = av.logging.Capture(local=True)  # made here: it catches the entering thread
        self._lines = self._capture.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._capture.__exit__(exc_type, exc, tb)  # type: ignore[arg-type]  # PyAV's stub is narrower

    def open_decoder(self, codec_context: Any) -> None:
        """Open a PyAV decoder (thread settings made) and adopt the threads FFmpeg starts for it."""
        with _open_lock:
            before = _threads()
            codec_context.open(strict=False)
            self._workers = _threads() - before
        for thread in self._workers:
            _adopted[thread] = self._caught

    @property
    def threads(self) -> int:
        """How many threads the decoder opened with :meth:`open_decoder` started."""
        return len(self._workers)

    def close(self) -> None:
        """Forget the adopted threads (call when the decoder is closed: their ids may be reused)."""
        for thread in self._workers:
            _adopted.pop(thread, None)
        self._workers = set()

    def take(self) -> StreamDamage:
        """Count and forget the lines caught so far."""
        damage = StreamDamage()
        lines, self._lines[:] = list(self._lines), []
        while self._caught:  # popleft is atomic: a worker may append meanwhile
            lines.append(self._caught.popleft())
        for level, _name, message in lines:
            missed = _MISSED.search(message)
            if missed:
                damage.packets_lost += int(missed.group(1))
            elif level <= av.logging.ERROR:
                damage.errors += 1
        return damage


class DamagedPictures:
    """Counts each damaged picture once, though it shows twice: as FFmpeg's error lines and as the
    corrupt flag on its frame, which a frame-threaded decoder hands out up to ``window`` packets
    after the lines (its threads' delay, plus frame reordering). Damage that only one sign shows
    (a refused slice, a frame before a recovery point) counts too."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._packet = 0
        self._unmatched: deque[tuple[int, bool]] = deque()  # (packet, shown by lines) awaiting the other sign

    def seen(self, logged: bool, flagged: bool) -> bool:
        """One packet's signs; True when they show a picture not counted yet."""
        self._packet += 1
        while self._unmatched and self._packet - self._unmatched[0][0] > self._window:
            self._unmatched.popleft()
        if logged == flagged:  # both at once (one thread decoded it all), or neither
            return logged
        match = next((item for item in self._unmatched if item[1] != logged), None)
        if match is not None:  # the other sign of a picture already counted
            self._unmatched.remove(match)
            return False
        self._unmatched.append((self._packet, logged))
        return True
