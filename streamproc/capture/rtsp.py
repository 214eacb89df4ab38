"""RTSP cameras through PyAV (FFmpeg), over TCP or UDP, with timeouts on every blocking call."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import av

from streamproc.capture.live import Capture, LiveSource, LiveSourceError
from streamproc.errors import InputError
from streamproc.frames import StreamInfo
from streamproc.pictures import AvPicture

log = logging.getLogger(__name__)

# what to check, by FFmpeg error class (the classes exist in every PyAV we support)
_HINTS: tuple[tuple[type[Exception], str], ...] = (
    (av.error.HTTPNotFoundError, "check the stream path"),
    (av.error.HTTPUnauthorizedError, "check the user name and password"),
    (av.error.HTTPForbiddenError, "check the user name and password"),
    (av.error.HTTPBadRequestError, "check the stream path and the transport (live.transport: tcp or udp)"),
    (ConnectionRefusedError, "nothing listens there: is the camera on, is the port right?"),
)


def _reason(exc: Exception, timeout: float, waiting_for: str) -> str:
    """FFmpeg's complaint in words, without the url (which may hold a password)."""
    if isinstance(exc, av.error.ExitError):  # PyAV's timeout interrupted FFmpeg
        return f"no {waiting_for} within {timeout:g} s"
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    hint = next((text for cls, text in _HINTS if isinstance(exc, cls)), None)
    return f"{reason}: {hint}" if hint else reason


class _RtspConnection:
    """One RTSP session: an open PyAV container and its video stream."""

    def __init__(self, container: Any, info: StreamInfo, read_timeout: float) -> None:
        self._container = container
        self._stream = container.streams.video[0]
        self._read_timeout = read_timeout
        self.info = info

    def captures(self) -> Iterator[Capture | None]:
        time_base = self._stream.time_base
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    yield None  # a damaged packet (UDP loss): conceal it, stall detection watches
                    continue
                if not frames:
                    yield None
                for frame in frames:
                    media_time = float(frame.pts * time_base) if frame.pts is not None else None
                    yield Capture(AvPicture(frame), media_time, bool(frame.key_frame))
        except av.error.FFmpegError as exc:
            raise LiveSourceError(_reason(exc, self._read_timeout, "data")) from None

    def close(self) -> None:
        self._container.close()


class RtspSource(LiveSource):
    """An IP camera or NVR stream: ``rtsp://[user:password@]host[:port]/path``."""

    def _check(self) -> None:
        parts = urlsplit(self._url)
        if not parts.hostname:
            raise InputError(f"RTSP url {self.url} has no host: write rtsp://host[:port]/path")
        try:
            parts.port  # noqa: B018 - raises on a bad port number
        except ValueError:
            raise InputError(f"RTSP url {self.url} has an invalid port") from None

    def _connect(self) -> _RtspConnection:
        live = self.settings
        options = {
            "rtsp_transport": live.transport,
            "allowed_media_types": "video",  # do not set up audio we would throw away
        }
        try:
            container = av.open(self._url, options=options, timeout=(live.connect_timeout, live.read_timeout))
        except av.error.FFmpegError as exc:
            raise LiveSourceError(_reason(exc, live.connect_timeout, "answer")) from None
        try:
            info = self._stream_info(container)
        except LiveSourceError:
            container.close()
            raise
        return _RtspConnection(container, info, live.read_timeout)

    def _stream_info(self, container: Any) -> StreamInfo:
        if not container.streams.video:
            raise LiveSourceError("the stream has no video")
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # frame threads would hold frames back: latency
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise LiveSourceError("the video has no picture size yet (no keyframe received)")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return StreamInfo(
            source_id=self.source_id,
            url=self.url,
            width=width,
            height=height,
            fps=float(rate),
            time_base=stream.time_base or Fraction(1, 90_000),
            total_frames=None,
            live=True,
        )
