"""Video files decoded with PyAV (FFmpeg), frame-threaded, every frame kept.

A file can also stand in for a camera (``realtime``): its frames are delivered at the file's own
frame rate and dropped, oldest first, when processing falls behind; ``loop`` replays it endlessly.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streamproc.capture.base import Source, SourceState, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.errors import InputError
from streamproc.frames import Frame, StreamInfo
from streamproc.pictures import AvPicture
from streamproc.priority import lower_thread_priority

log = logging.getLogger(__name__)


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


class FileSource(Source):
    """Decodes a local video file from start to end (and again, with ``loop``)."""

    def __init__(
        self,
        source_id: str,
        path: str | Path,
        listener: StatusListener | None = None,
        realtime: bool = False,
        loop: bool = False,
    ) -> None:
        super().__init__(source_id, str(path), listener)
        self.path = Path(path)
        self.realtime = realtime
        self.live = realtime  # paced like a camera: the buffer drops rather than blocks
        self.loop = loop
        self.truncated = False
        self._container: Any = None
        self._stream: Any = None
        self.info: StreamInfo | None = None

    def open(self) -> StreamInfo:
        """Open the file and read its stream parameters; raises InputError naming the problem."""
        path = self.path
        if not path.exists():
            raise InputError(f"input {path} does not exist: check the path")
        if path.is_dir():
            raise InputError(f"input {path} is a directory, not a video file")
        if path.stat().st_size == 0:
            raise InputError(f"input {path} is empty (0 bytes): the recording is missing or was not written")
        try:
            container = av.open(str(path), mode="r")
        except av.error.FFmpegError as exc:
            raise InputError(
                f"input {path} cannot be read by FFmpeg ({_ffmpeg_reason(exc)}): it is not a video,"
                " or it is damaged or truncated before its index; check that it plays"
            ) from None
        if not container.streams.video:
            container.close()
            raise InputError(f"input {path} has no video stream")
        stream = container.streams.video[0]
        # frame + slice threads: decoding overlaps with inference; a paced file decodes one
        # frame per frame interval, where slice threads alone hold no frames back (latency)
        stream.thread_type = "SLICE" if self.realtime else "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            container.close()
            raise InputError(f"input {path}: the video stream has no picture size (corrupt header)")
        self._container, self._stream = container, stream
        self.info = StreamInfo(
            source_id=self.source_id,
            url=str(path),
            width=width,
            height=height,
            fps=float(rate),
            time_base=stream.time_base or Fraction(1, round(float(rate))),
            total_frames=None if self.loop else stream.frames or None,
            live=self.realtime,
        )
        return self.info

    def _capture(self, buffer: FrameBuffer) -> None:
        assert self.info is not None, "open() first"
        info = self.info
        if not self.realtime:
            lower_thread_priority()  # decoding runs ahead into the buffer: inference goes first
        self.set_state(SourceState.STREAMING)
        problem: str | None = None
        pacer = _Pacer(self._stop) if self.realtime else None
        offset = 0.0  # media seconds before this pass: timestamps keep rising when the file loops
        try:
            while True:
                end = self._decode_pass(offset, pacer)
                if end is None or not self.loop or self.stopping:
                    break
                if end <= offset:
                    problem = "no frame could be decoded"
                    break
                offset = end
                self._container.seek(0)
        except av.error.FFmpegError as exc:
            problem = _ffmpeg_reason(exc)
        finally:
            self._container.close()
        expected = info.total_frames
        if not self.stopping and (problem or (expected and self.frames_decoded < expected)):
            self.truncated = True
            of = f" of {expected}" if expected else ""
            cause = f": {problem}" if problem else ""
            self.set_state(
                SourceState.FAILED,
                f"{self.path} is truncated or damaged: decoded {self.frames_decoded}{of} frames{cause}",
            )
        else:
            self.set_state(SourceState.STOPPED, f"end of file after {self.frames_decoded} frames")

    def _decode_pass(self, offset: float, pacer: _Pacer | None) -> float | None:
        """Emit every frame of the file once, ``offset`` seconds later on the media timeline.

        Returns where the pass ended on that timeline, or None when stopped or the buffer closed.
        """
        assert self.info is not None
        info, first = self.info, self.frames_decoded
        end = offset
        for av_frame in self._container.decode(self._stream):
            if self.stopping:
                return None
            pts_raw = av_frame.pts
            if pts_raw is None:
                pts = offset + (self.frames_decoded - first) / info.fps
            else:
                pts = offset + float(pts_raw * info.time_base)
                pts_raw += round(offset / info.time_base)
            if pacer is not None and not pacer.wait(pts):
                return None
            frame = Frame(
                stream=info,
                index=self.frames_decoded,
                pts=pts,
                pts_raw=pts_raw,
                # a replayed camera's frame was captured when it was due, however late it comes
                wall_time=pacer.capture_time(pts) if pacer is not None else time.time(),
                picture=AvPicture(av_frame),
                keyframe=bool(av_frame.key_frame),
            )
            if not self.emit(frame):
                return None
            self.frames_decoded += 1
            end = pts + 1.0 / info.fps
        return end


class _Pacer:
    """Holds each frame back until its media time has come, as a camera would deliver it."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._start: float | None = None  # monotonic time of media time 0
        self._wall_start = 0.0  # the same moment on the wall clock

    def wait(self, media_time: float) -> bool:
        """Sleep until ``media_time``; False when asked to stop meanwhile."""
        now = time.monotonic()
        if self._start is None:
            self._start = now - media_time
            self._wall_start = time.time() - media_time
        delay = self._start + media_time - now
        return not (delay > 0 and self._stop.wait(delay))

    def capture_time(self, media_time: float) -> float:
        """Wall-clock time at which the frame at ``media_time`` was due."""
        return self._wall_start + media_time
