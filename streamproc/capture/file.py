"""Video files decoded with PyAV (FFmpeg), frame-threaded, every frame kept."""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streamproc.capture.base import Source, SourceState, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.errors import InputError
from streamproc.frames import AvPicture, Frame, StreamInfo

log = logging.getLogger(__name__)


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


class FileSource(Source):
    """Decodes a local video file from start to end."""

    def __init__(self, source_id: str, path: str | Path, listener: StatusListener | None = None) -> None:
        super().__init__(source_id, str(path), listener)
        self.path = Path(path)
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
        stream.thread_type = "AUTO"  # frame + slice threads: decoding overlaps with inference
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
            total_frames=stream.frames or None,
            live=False,
        )
        return self.info

    def _capture(self, buffer: FrameBuffer) -> None:
        assert self.info is not None, "open() first"
        info, stream = self.info, self._stream
        self.set_state(SourceState.STREAMING)
        problem: str | None = None
        try:
            for av_frame in self._container.decode(stream):
                if self.stopping:
                    break
                pts_raw = av_frame.pts
                pts = (
                    float(pts_raw * info.time_base) if pts_raw is not None else self.frames_decoded / info.fps
                )
                frame = Frame(
                    stream=info,
                    index=self.frames_decoded,
                    pts=pts,
                    pts_raw=pts_raw,
                    wall_time=time.time(),
                    picture=AvPicture(av_frame),
                    keyframe=bool(av_frame.key_frame),
                )
                if not self.emit(frame):
                    break
                self.frames_decoded += 1
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
