"""Live sources: connect, stream, and reconnect with backoff until stopped.

A live source is a state machine, every transition logged and sent as a status event::

    connecting -> streaming -> reconnecting -> streaming ... -> stopped (asked to stop)
                                            \\-> failed  (max_attempts failures in a row)

Subclasses only know how to open one connection (:meth:`LiveSource._connect`); this module owns
the retries, stall detection and the media timeline that stays continuous across reconnects.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from streamproc.capture.backoff import Backoff
from streamproc.capture.base import Source, SourceState, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.capture.urls import redact
from streamproc.config import LiveSettings
from streamproc.frames import Frame, Picture, StreamInfo

log = logging.getLogger(__name__)


class LiveSourceError(Exception):
    """A connection could not be made or broke; the message is safe to show (no credentials)."""


@dataclass(frozen=True)
class Capture:
    """One decoded picture and its time on the stream's own clock (seconds; None if unknown)."""

    picture: Picture
    media_time: float | None
    keyframe: bool = False


class Connection(Protocol):
    """One open session with a live source."""

    info: StreamInfo

    def captures(self) -> Iterator[Capture | None]:
        """Decoded pictures until the stream ends; None when data came but no picture (yet).

        Raises LiveSourceError when the connection breaks.
        """
        ...

    def close(self) -> None: ...


class _Timeline:
    """Media time of a live source in seconds since it started, continuous across reconnects.

    Within a connection the stream's own clock gives smooth timing; each new connection is placed
    at the wall-clock time its first frame arrived, so timestamps never go back.
    """

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._offset: float | None = None

    def new_connection(self) -> None:
        self._offset = None

    def pts(self, media_time: float | None) -> float:
        elapsed = time.monotonic() - self._start
        if media_time is None:
            return elapsed
        if self._offset is None:
            self._offset = elapsed - media_time
        return media_time + self._offset


class LiveSource(Source):
    """Base for RTSP and camera sources: the connect / stream / reconnect loop."""

    live = True
    # stop() cannot interrupt a blocking FFmpeg or V4L2 call; the pipeline waits this long for the
    # thread, then leaves it to end by itself within its timeout (it holds no frames by then)
    join_grace = 0.5

    def __init__(
        self,
        source_id: str,
        url: str,
        settings: LiveSettings,
        listener: StatusListener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(source_id, redact(url), listener)
        self._url = url  # the real one, credentials included: never logged
        self.settings = settings
        self._rng = rng
        self._timeline = _Timeline()

    def _connect(self) -> Connection:
        """Open one connection; raise LiveSourceError with a reason a user can act on."""
        raise NotImplementedError

    def _check(self) -> None:
        """Problems that retrying cannot fix, found before the run starts (raise InputError)."""

    def open(self) -> StreamInfo:
        """Validate the source; connecting happens in the capture thread, with retries."""
        self._check()
        # the real size and rate are known once connected; each frame carries its connection's info
        return StreamInfo(self.source_id, self.url, 0, 0, 0.0, Fraction(1, 90_000), None, live=True)

    def _capture(self, buffer: FrameBuffer) -> None:
        backoff = Backoff(self.settings.reconnect, self._rng)
        self.set_state(SourceState.CONNECTING, f"connecting to {self.url}")
        while not self.stopping:
            started: float | None = None
            try:
                connection = self._connect()
            except LiveSourceError as exc:
                problem = f"cannot connect: {exc}"
            else:
                try:
                    started, problem = self._stream(connection)
                finally:
                    connection.close()
            if self.stopping:
                break
            self.failures += 1
            delay = backoff.failed(time.monotonic() - started if started is not None else 0.0)
            if backoff.exhausted:
                self.set_state(SourceState.FAILED, f"{problem}; gave up after {backoff.failures} attempts")
                return
            self.set_state(
                SourceState.RECONNECTING, f"{problem}; attempt {backoff.failures + 1} in {delay:.1f} s"
            )
            self._stop.wait(delay)
        self.set_state(SourceState.STOPPED, "stopped")

    def _stream(self, connection: Connection) -> tuple[float | None, str]:
        """Hand frames to the buffer until the connection ends.

        Returns when streaming started (monotonic seconds, None if no frame came) and why it ended.
        """
        started: float | None = None
        last_frame = time.monotonic()
        stall = self.settings.stall_timeout
        self._timeline.new_connection()
        try:
            for capture in connection.captures():
                now = time.monotonic()
                if self.stopping:
                    break
                if capture is None:
                    if now - last_frame > stall:
                        return started, f"stalled: no frame for {stall:g} s"
                    continue
                last_frame = now
                if started is None:
                    started = now
                    info = connection.info
                    size = f"{info.width}x{info.height} at {info.fps:g} fps"
                    self.set_state(SourceState.STREAMING, f"{size} from {self.url}")
                if not self.emit(self._frame(connection.info, capture)):
                    break
                self.frames_decoded += 1
        except LiveSourceError as exc:
            return started, str(exc)
        return started, "the stream ended"

    def _frame(self, info: StreamInfo, capture: Capture) -> Frame:
        pts = self._timeline.pts(capture.media_time)
        return Frame(
            stream=info,
            index=self.frames_decoded,
            pts=pts,
            pts_raw=round(pts / info.time_base),
            wall_time=time.time(),
            picture=capture.picture,
            keyframe=capture.keyframe,
        )
