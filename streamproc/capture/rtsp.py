"""RTSP cameras through PyAV (FFmpeg), over TCP or UDP, with timeouts on every blocking call.

``transport: auto`` asks for RTP over the RTSP connection (TCP) first, as most cameras and NVRs
serve it and it passes firewalls; a server that refuses it (400, 461 "Unsupported transport") is
asked for UDP at once, and the transport that worked is asked for first on every reconnect.

Over UDP the session can be set up and played on the RTSP connection while a firewall or NAT on the
way drops every RTP packet: FFmpeg then probes until ``connect_timeout`` without a single packet (so
without a picture size). ``auto`` asks for TCP at once when that happens, and keeps TCP; likewise for
UDP when a server accepts RTP over TCP and then sends none.
"""

from __future__ import annotations

import errno
import logging
import re
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av

from streamproc.capture.ffmpeg_log import FfmpegLog, Line
from streamproc.capture.live import Capture, Connection, LiveSource, LiveSourceError
from streamproc.capture.mediaclock import MediaClock
from streamproc.capture.urls import parse_url
from streamproc.core.errors import InputError
from streamproc.core.frames import StreamInfo
from streamproc.core.pictures import AvPicture

log = logging.getLogger(__name__)

_FAILED_461 = re.compile(r"failed: 461\b")
TIMED_OUT = 0.95  # a failure after this share of a timeout is that timeout
# a timeout while streaming (waiting for "data"): nothing closed the connection, nothing came on it
SILENT_CONNECTION = ": the camera stopped sending, or the network to it is down (the connection stayed open)"

# errors that retrying cannot fix, by FFmpeg error class, with what to check
_MISCONFIGURED: tuple[tuple[type[Exception], str], ...] = (
    (av.error.HTTPNotFoundError, "check the stream path"),
    (av.error.HTTPUnauthorizedError, "check the user name and password"),
    (av.error.HTTPForbiddenError, "check the user name and password (and the user's rights)"),
)
_UNREACHABLE_HINTS: tuple[tuple[type[Exception], str], ...] = (
    (ConnectionRefusedError, "nothing listens there: is the camera on, is the port right?"),
)


class TransportRefused(LiveSourceError):
    """The server will not send RTP over the transport asked for."""


class Silent(LiveSourceError):
    """The session was set up and played, but no video packet arrived."""


def _refuses_transport(exc: Exception) -> bool:
    """400 Bad Request to a SETUP (e.g. rtsp-server-perl to TCP) or 461 Unsupported transport,
    which FFmpeg reports as 'Protocol not supported'."""
    if isinstance(exc, av.error.HTTPBadRequestError):
        return True
    if getattr(exc, "errno", None) == errno.EPROTONOSUPPORT:
        return True
    # FFmpeg's last error line ("method SETUP failed: 461 ..."), not str(exc), which holds the url,
    # whose port may well contain 461
    said: Line | None = getattr(exc, "log", None)
    return said is not None and _FAILED_461.search(said[2]) is not None


def _classify(
    exc: Exception, timeout: float, waiting_for: str, transport: str, waited: float = 0.0
) -> LiveSourceError:
    """FFmpeg's complaint in words a user can act on, without the url (which may hold a password).

    PyAV's timeout interrupts FFmpeg (ExitError), but FFmpeg's RTSP code often reports the
    interrupted read as "Invalid data" or an I/O error: a failure after the whole timeout is a timeout.
    """
    if isinstance(exc, av.error.ExitError) or waited >= TIMED_OUT * timeout:
        why = SILENT_CONNECTION if waiting_for == "data" else ""
        return LiveSourceError(f"no {waiting_for} within {timeout:g} s{why}")
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    if _refuses_transport(exc):
        return TransportRefused(
            f"{reason}: the server refuses RTP over {transport.upper()}", misconfigured=True
        )
    for cls, hint in _MISCONFIGURED:
        if isinstance(exc, cls):
            return LiveSourceError(f"{reason}: {hint}", misconfigured=True)
    unreachable = next((text for cls, text in _UNREACHABLE_HINTS if isinstance(exc, cls)), None)
    return LiveSourceError(f"{reason}: {unreachable}" if unreachable else reason)


class _RtspConnection:
    """One RTSP session: an open PyAV container and its video stream."""

    def __init__(
        self, container: Any, info: StreamInfo, read_timeout: float, transport: str, ffmpeg_log: FfmpegLog
    ) -> None:
        self._container = container
        self._stream = container.streams.video[0]
        self._read_timeout = read_timeout
        self.info = info
        self.transport = transport
        self._log = ffmpeg_log
        self.packets_lost = 0
        self.decode_errors = 0

    def captures(self) -> Iterator[Capture | None]:
        clock: MediaClock[Any] = MediaClock(self.info.time_base, self.info.fps)
        with self._log:
            try:
                for packet in self._container.demux(self._stream):
                    frames = self._decode(packet)
                    if not frames:
                        yield None
                    for frame in frames:
                        for timed, seconds in clock.place(frame, frame.pts, frame.duration):
                            yield Capture(AvPicture(timed), seconds, bool(timed.key_frame))
            except av.error.FFmpegError as exc:
                raise _classify(exc, self._read_timeout, "data", self.transport) from None

    def _decode(self, packet: Any) -> list[Any]:
        """The packet's frames; a damaged packet (UDP loss) is concealed and counted."""
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            frames = []
            self.decode_errors += 1
        damage = self._log.take()
        self.packets_lost += damage.packets_lost
        if damage.errors and frames:  # a picture came out, patched over: one error per packet
            self.decode_errors += 1
        return frames

    def close(self) -> None:
        self._container.close()
        self._log.close()


class RtspSource(LiveSource):
    """An IP camera or NVR stream: ``rtsp://[user:password@]host[:port]/path``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ffmpeg_url = ""  # the url with its login percent-encoded, set by _check
        self._worked: str | None = None  # the transport that last streamed (auto)

    def _check(self) -> None:
        parsed = parse_url(self._url)  # InputError, without the url, when the login is ambiguous
        if not parsed.host:
            raise InputError(f"RTSP url {self.url} has no host: write rtsp://host[:port]/path")
        self._ffmpeg_url = parsed.encoded

    def _connection_damage(self, connection: Connection) -> tuple[int, int]:
        assert isinstance(connection, _RtspConnection)
        return connection.packets_lost, connection.decode_errors

    def _ended(self, frames: int) -> str:
        # FFmpeg reads the end of an RTSP stream only when the TCP connection closes (both transports:
        # over UDP it watches the RTSP connection too); a cut that sends nothing is "no data" instead
        return (
            f"the camera closed the connection after {frames} frames"
            " (camera or NVR restarted, or a device on the way cut it)"
        )

    def _transport_of(self, connection: Connection) -> str:
        assert isinstance(connection, _RtspConnection)
        return f" over {connection.transport.upper()}"

    def _transports(self) -> list[str]:
        wanted = self.settings.transport
        if wanted != "auto":
            return [wanted]
        first = self._worked or "tcp"
        return [first, *(other for other in ("tcp", "udp") if other != first)]

    def _connect(self) -> _RtspConnection:
        transports = self._transports()
        failed: list[LiveSourceError] = []
        for transport in transports:
            try:
                connection = self._open(transport)
            except (TransportRefused, Silent) as exc:
                failed.append(exc)
                if isinstance(exc, Silent) and transport != transports[-1]:
                    other = transports[-1].upper()
                    log.warning("source %s: %s; switching to %s", self.source_id, exc, other)
                continue
            if self.settings.transport == "auto":
                self._worked = transport
            return connection
        raise self._no_transport(failed)

    def _no_transport(self, failed: list[LiveSourceError]) -> LiveSourceError:
        """Why no transport worked, with what to change."""
        if len(failed) == 1:  # live.transport forced the one transport tried
            exc = failed[0]
            other = "udp" if self.settings.transport == "tcp" else "tcp"
            hint = (
                " (set live.transport: auto)"
                if isinstance(exc, TransportRefused)
                else f"; try live.transport: {other}"
            )
            return LiveSourceError(f"{exc}{hint}", misconfigured=exc.misconfigured)
        if all(isinstance(exc, TransportRefused) for exc in failed):
            return LiveSourceError(
                "the server refuses RTP over TCP and UDP: check the url", misconfigured=True
            )
        # one refused, the other silent: a firewall dropping UDP, or a camera that does not send yet
        # (its encoder restarting): retried, as when it does not answer
        return LiveSourceError("; ".join(map(str, failed)))

    def _open(self, transport: str) -> _RtspConnection:
        live = self.settings
        options = {
            "rtsp_transport": transport,
            "allowed_media_types": "video",  # do not set up audio we would throw away
            # the frame rate comes from the stream's own timing, not from a second of probing:
            # connecting (and reconnecting) is a keyframe away, not a keyframe plus ~20 frames
            "fpsprobesize": "0",
        }
        ffmpeg_log = FfmpegLog()  # loss while FFmpeg probes the stream counts too
        began = time.monotonic()
        try:
            with ffmpeg_log:
                container = av.open(
                    self._ffmpeg_url, options=options, timeout=(live.connect_timeout, live.read_timeout)
                )
        except av.error.FFmpegError as exc:
            waited = time.monotonic() - began
            raise _classify(exc, live.connect_timeout, "answer", transport, waited) from None
        try:
            info = self._stream_info(container, transport)
            self._open_decoder(container, ffmpeg_log)
        except LiveSourceError:
            container.close()
            ffmpeg_log.close()
            raise
        return _RtspConnection(container, info, live.read_timeout, transport, ffmpeg_log)

    @staticmethod
    def _open_decoder(container: Any, ffmpeg_log: FfmpegLog) -> None:
        stream = container.streams.video[0]
        try:
            with ffmpeg_log:  # its slice threads log the errors they meet: adopted, they count too
                ffmpeg_log.open_decoder(stream.codec_context)
        except av.error.FFmpegError as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise LiveSourceError(
                f"cannot decode its {stream.codec_context.name} video ({reason})", misconfigured=True
            ) from None

    def _stream_info(self, container: Any, transport: str) -> StreamInfo:
        if not container.streams.video:
            raise LiveSourceError("the stream has no video (audio only?): check the url", misconfigured=True)
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # frame threads would hold frames back: latency
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:  # FFmpeg's parser reads the size from the first packets
            why = (
                "a firewall or NAT on the way may drop UDP"
                if transport == "udp"
                else "the server sends none (or no keyframe yet)"
            )
            within = f"{self.settings.connect_timeout:g} s"
            raise Silent(f"no video packet arrived over {transport.upper()} within {within}: {why}")
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
