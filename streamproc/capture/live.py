"""Live sources: connect, stream, and reconnect with backoff until stopped.

A live source is a state machine, every transition logged and sent as a status event::

    connecting -> streaming -> reconnecting -> streaming ... -> stopped (asked to stop)
         \\-> reconnecting ... -> failed  (before the first frame only, after give_up_after seconds:
                                        max_attempts failures in a row, or misconfig_attempts
                                        that retrying cannot fix)

A source that never streamed ends ``stopped`` with an error saying why, so that a run in which no
camera ever delivered a frame fails. Subclasses only know how to open one connection
(:meth:`LiveSource._connect`); this module owns the retries, stall detection, the counts of damage
and the media timeline that stays continuous across reconnects.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Protocol

from streamproc.capture.backoff import Backoff
from streamproc.capture.base import Source, SourceState, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.config.settings import LiveSettings
from streamproc.core.frames import Frame, Picture, StreamInfo

log = logging.getLogger(__name__)

MIN_STEP = 1e-3  # seconds: the least a frame's time follows its predecessor's across connections
WARN_INTERVAL = 10.0  # seconds between warnings about packet loss and damaged frames
NEVER_STREAMED = "never streamed"  # the error of a live source until its first frame
BURST_S = 2.0  # seconds after connecting in which frames wait for buffer space instead of dropping


class LiveSourceError(Exception):
    """A connection could not be made or broke; the message is safe to show (no credentials).

    ``misconfigured``: retrying cannot fix it (wrong password, path or transport; not a video).
    """

    def __init__(self, message: str, misconfigured: bool = False) -> None:
        super().__init__(message)
        self.misconfigured = misconfigured


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
    at the wall-clock time its first frame arrived (or just after the last frame, if the stream's
    clock ran ahead of the wall clock), so timestamps always increase.
    """

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._offset: float | None = None
        self._last = -math.inf

    def new_connection(self) -> None:
        self._offset = None

    def pts(self, media_time: float | None) -> float:
        elapsed = time.monotonic() - self._start
        if media_time is None:  # a source without a clock (V4L2 through OpenCV): the wall clock
            value = elapsed
        else:
            if self._offset is None:
                self._offset = max(elapsed, self._last + MIN_STEP) - media_time
            value = media_time + self._offset
        value = max(value, self._last + MIN_STEP)
        self._last = value
        return value


class _DamageCounter:
    """Per-source totals of lost packets and damaged frames, with a warning at most every
    ``WARN_INTERVAL`` seconds while they grow."""

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.packets_lost = 0
        self.decode_errors = 0
        self._closed = (0, 0)  # totals of the connections that ended
        self._warned = (0, 0, time.monotonic())  # totals at, and time of, the last warning

    def connection(self, lost: int, errors: int) -> None:
        """The current connection's own running totals."""
        self.packets_lost, self.decode_errors = self._closed[0] + lost, self._closed[1] + errors
        lost_then, errors_then, at = self._warned
        now = time.monotonic()
        if now - at < WARN_INTERVAL:
            return
        new = (self.packets_lost - lost_then, self.decode_errors - errors_then)
        if any(new):
            log.warning(
                "source %s: %d RTP packets lost, %d damaged frames in the last %.0f s (%d and %d in all)",
                self.source_id,
                *new,
                now - at,
                self.packets_lost,
                self.decode_errors,
            )
        self._warned = (self.packets_lost, self.decode_errors, now)

    def connection_ended(self) -> None:
        self._closed = (self.packets_lost, self.decode_errors)


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
        super().__init__(source_id, url, listener)
        self._url = url  # the real one, credentials included: never logged
        self.settings = settings
        self._rng = rng
        self._timeline = _Timeline()
        self._damage = _DamageCounter(source_id)

    def _connect(self) -> Connection:
        """Open one connection; raise LiveSourceError with a reason a user can act on."""
        raise NotImplementedError

    def _check(self) -> None:
        """Problems that retrying cannot fix, found before the run starts (raise InputError)."""

    def _connection_damage(self, connection: Connection) -> tuple[int, int]:
        """(packets lost, damaged frames) so far on this connection; sources that can tell override."""
        return 0, 0

    def _ended(self, frames: int) -> str:
        """Why streaming stopped when the connection ended without an error, after ``frames`` frames
        on it; sources that can tell who ended it override."""
        return f"the stream ended after {frames} frames"

    def _transport_of(self, connection: Connection) -> str:
        """How the media travels, for the streaming message (`` over TCP``); empty if not networked."""
        return ""

    def open(self) -> StreamInfo:
        """Validate the source; connecting happens in the capture thread, with retries."""
        self._check()
        self.error = f"{NEVER_STREAMED}: still connecting"  # until the first frame (see _follow_size)
        # the real size and rate are known once connected; each frame carries its connection's info
        return StreamInfo(self.source_id, self.url, 0, 0, 0.0, Fraction(1, 90_000), None, live=True)

    def _capture(self, buffer: FrameBuffer) -> None:
        backoff = Backoff(self.settings.reconnect, self._rng)
        misconfigured = 0  # attempts in a row that failed for a reason retrying cannot fix
        trying_since: float | None = None  # the first failure before the first frame
        self.set_state(SourceState.CONNECTING, f"connecting to {self.url}")
        while not self.stopping:
            started, problem, wrong = self._attempt()
            if self.stopping:
                break
            self.failures += 1
            if not self.frames_decoded:  # a run whose cameras never streamed fails, saying why
                self.error = f"{NEVER_STREAMED}: {problem}"
                trying_since = trying_since or time.monotonic()
            misconfigured = misconfigured + 1 if wrong else 0
            delay = backoff.failed(time.monotonic() - started if started is not None else 0.0)
            give_up = self._give_up(backoff, misconfigured, trying_since)
            if give_up:
                self.set_state(SourceState.FAILED, f"{problem}; {give_up}")
                return
            if misconfigured and self.settings.retry_forever_on_misconfig and not self.frames_decoded:
                delay = backoff.delay(10**6)  # the longest delay: the user asked to keep trying
            self.set_state(
                SourceState.RECONNECTING, f"{problem}; attempt {backoff.failures + 1} in {delay:.1f} s"
            )
            self._stop.wait(delay)
        self.set_state(SourceState.STOPPED, self.error or "stopped")

    def _give_up(self, backoff: Backoff, misconfigured: int, trying_since: float | None) -> str | None:
        """Why a source stops retrying, or None. A source that has delivered a frame never does: a
        relay or NVR answers 404 while the camera behind it is away, a server restarts, so it retries
        with capped backoff for the whole run. Before the first frame, it gives up after
        ``misconfig_attempts`` attempts that retrying cannot fix or ``max_attempts`` failures in a
        row, and not before it has tried for ``give_up_after`` seconds."""
        settings = self.settings
        if self.frames_decoded or trying_since is None:
            return None
        if time.monotonic() - trying_since < settings.give_up_after:
            return None
        if misconfigured >= settings.misconfig_attempts and not settings.retry_forever_on_misconfig:
            return f"gave up after {misconfigured} attempts in {time.monotonic() - trying_since:.0f} s"
        if backoff.exhausted:
            return f"gave up after {backoff.failures} attempts in {time.monotonic() - trying_since:.0f} s"
        return None

    def _attempt(self) -> tuple[float | None, str, bool]:
        """One connection: (when streaming started or None, why it ended, whether retrying cannot fix it)."""
        try:
            connection = self._connect()
        except LiveSourceError as exc:
            return None, f"cannot connect: {exc}", exc.misconfigured
        try:
            started, problem = self._stream(connection)
        finally:
            connection.close()
            self._damage.connection_ended()
        return started, problem, False

    def _stream(self, connection: Connection) -> tuple[float | None, str]:
        """Hand frames to the buffer until the connection ends.

        Returns when streaming started (monotonic seconds, None if no frame came) and why it ended.
        """
        started: float | None = None
        frames = 0  # on this connection
        last_frame = time.monotonic()
        stall = self.settings.stall_timeout
        self._timeline.new_connection()
        try:
            for capture in connection.captures():
                now = time.monotonic()
                self._count_damage(connection)
                if self.stopping:
                    break
                if capture is None:
                    if now - last_frame > stall:
                        return started, f"stalled: no frame for {stall:g} s"
                    continue
                last_frame = now
                started = now if started is None else started
                self._follow_size(connection, capture)
                # the frames FFmpeg held while connecting come at once: take them all, then drop
                # the oldest only when processing falls behind the stream
                if not self.emit(self._frame(connection.info, capture), wait=now - started < BURST_S):
                    break
                self.frames_decoded += 1
                frames += 1
        except LiveSourceError as exc:
            return started, str(exc)
        return started, self._ended(frames)

    def _count_damage(self, connection: Connection) -> None:
        damage = self._damage
        damage.connection(*self._connection_damage(connection))
        self.packets_lost, self.decode_errors = damage.packets_lost, damage.decode_errors

    def _follow_size(self, connection: Connection, capture: Capture) -> None:
        """Report streaming on the first frame and again whenever the picture size changes."""
        info = connection.info
        size = (capture.picture.width, capture.picture.height)
        if self.state is SourceState.STREAMING and size == (info.width, info.height):
            return
        changed = self.state is SourceState.STREAMING
        if not self.frames_decoded:
            self.error = None
        connection.info = info = replace(info, width=size[0], height=size[1])
        self.size = size
        what = "size changed to " if changed else ""
        via = self._transport_of(connection)
        self.set_state(
            SourceState.STREAMING, f"{what}{size[0]}x{size[1]} at {info.fps:g} fps from {self.url}{via}"
        )

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
