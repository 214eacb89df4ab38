"""Video files decoded with PyAV (FFmpeg), frame-threaded, every frame kept.

A file can also stand in for a camera (``realtime``): its frames are delivered at the file's own
frame rate and dropped, oldest first, when processing falls behind; ``loop`` replays it endlessly.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamproc.capture.base import Source, SourceState, StatusListener
from streamproc.capture.buffer import FrameBuffer
from streamproc.capture.ffmpeg_log import DamagedPictures, FfmpegLog
from streamproc.capture.inputs import STDIN, Damage, check_input
from streamproc.core.errors import InputError
from streamproc.core.frames import Frame, StreamInfo
from streamproc.core.memory import HUGE_PIXELS
from streamproc.core.pictures import ArrayPicture, AvPicture, Picture, reformat
from streamproc.core.priority import lower_thread_priority

log = logging.getLogger(__name__)

REORDER_SLACK = 2  # packets a damaged frame may come out after its error lines, beyond thread delay
ONE_THREAD_PIXELS = 1280 * 720  # files up to this size decode on one thread (see _one_decoding_thread)
ONE_THREAD_PIXELS_TWO_CORES = 1920 * 1088  # ... and up to this size on a machine with two cores
AHEAD_FRAMES = 4  # files: frames decoded before the first of them is prepared (see _in_runs) ...
AHEAD_BYTES = 16 << 20  # ... as long as their pictures stay within this


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


class FileSource(Source):
    """Decodes a local video file (or a stream on stdin or a named pipe) from start to end (and
    again, with ``loop``). Damaged packets are skipped and counted (``decode_errors``); frames of a
    file with a rotation in its display matrix are turned upright, as a player shows them."""

    def __init__(
        self,
        source_id: str,
        path: str | Path,
        listener: StatusListener | None = None,
        realtime: bool = False,
        loop: bool = False,
        video_track: int | None = None,
    ) -> None:
        super().__init__(source_id, str(path), listener)
        self.path = Path(path)
        self.video_track = video_track
        self.realtime = realtime
        self.live = realtime  # paced like a camera: the buffer drops rather than blocks
        self.loop = loop
        self.truncated = False
        self._container: Any = None
        self._stream: Any = None
        self._frames: Iterator[Any] = iter(())
        self._damage = Damage()
        self._log = FfmpegLog()  # decoding errors, also those the decoder's threads meet
        self._packets = 0
        self._turns = 0  # quarter turns counter-clockwise that make a frame upright
        self.info: StreamInfo | None = None

    def open(self) -> StreamInfo:
        """Open the file and read its stream parameters; raises InputError naming the problem."""
        stream = self._open_stream()
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            self._container.close()
            raise InputError(f"input {self.url}: the video stream has no picture size (corrupt header)")
        # frame + slice threads: decoding overlaps with inference; a paced file decodes one frame per
        # frame interval, where slice threads alone hold no frames back (latency); huge pictures too
        stream.thread_type = "SLICE" if self.realtime or width * height > HUGE_PIXELS else "AUTO"
        if not self.realtime and _one_decoding_thread(width * height):
            stream.thread_count = 1
        self._log.open_decoder(stream.codec_context)
        self._pictures = DamagedPictures(window=self._log.threads + REORDER_SLACK)
        self._frames = self._decoded()
        try:  # the first frame now: its display matrix says which way is up
            first = next(self._frames, None)
        except av.error.FFmpegError as exc:
            first, problem = None, _ffmpeg_reason(exc)
        else:
            problem = "it is damaged or not a video"
        if first is None:
            self._container.close()
            self._log.close()
            raise InputError(f"input {self.url}: no frame could be decoded: {problem}")
        self._frames = itertools.chain([first], self._frames)
        self._turns = round((first.rotation or 0) / 90) % 4
        if self._turns % 2:
            width, height = height, width
        self.size = (width, height)  # status events carry it, as a camera's do
        self.info = StreamInfo(
            source_id=self.source_id,
            url=self.url,
            width=width,
            height=height,
            fps=float(rate),
            time_base=stream.time_base or Fraction(1, round(float(rate))),
            total_frames=None if self.loop else stream.frames or None,
            live=self.realtime,
            media_file=None if self.loop or self.url == STDIN or not self.path.is_file() else str(self.path),
        )
        return self.info

    def _open_stream(self) -> Any:
        """The container's first video stream, after checks that name what is wrong."""
        check_input(self.url, self.loop)
        target = sys.stdin.buffer if self.url == STDIN else str(self.path)
        try:
            container = av.open(target, mode="r")
        except av.error.FFmpegError as exc:
            raise InputError(
                f"input {self.url} cannot be read by FFmpeg ({_ffmpeg_reason(exc)}): it is not a video,"
                " or it is damaged or truncated before its index; check that it plays"
            ) from None
        if not container.streams.video:
            container.close()
            raise InputError(f"input {self.url} has no video stream")
        self._container = container
        self._stream = self._chosen_track(container.streams.video)
        return self._stream

    def _chosen_track(self, tracks: Any) -> Any:
        """The video track ``video_track`` names (the first by default); said when there is a choice."""
        number = self.video_track or 0
        if number >= len(tracks):
            self._container.close()
            raise InputError(
                f"input {self.url} has {len(tracks)} video track(s): video_track {number} does not exist"
                f" (tracks count from 0)"
            )
        if len(tracks) > 1:
            codecs = [track.codec_context for track in tracks]
            described = "; ".join(f"{n}: {c.name} {c.width}x{c.height}" for n, c in enumerate(codecs))
            log.info(
                "input %s has %d video tracks (%s): reading track %d (choose with sources[].video_track)",
                self.url,
                len(tracks),
                described,
                number,
            )
        return tracks[number]

    def _decoded(self) -> Iterator[Any]:
        """Every decodable frame; packets the decoder rejects or reports damage in are counted
        (with frame threads, the report may come a few packets later)."""
        for packet in self._container.demux(self._stream):
            if packet.size:
                self._packets += 1
            try:
                with self._log:
                    frames = packet.decode()
            except av.error.FFmpegError:
                frames = None
            logged = self._log.take().errors > 0  # taken every time: a refused packet logs too
            if frames is None or self._pictures.seen(logged, any(frame.is_corrupt for frame in frames)):
                self._damaged(packet)
            yield from frames or ()

    def _damaged(self, packet: Any) -> None:
        self._damage.add(packet, self._stream.time_base)
        self.decode_errors = self._damage.count  # the source's count in stats and metrics

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
                self._frames = self._decoded()
        except av.error.FFmpegError as exc:
            problem = _ffmpeg_reason(exc)
        finally:
            self._container.close()
            self._log.close()
        self._finish(info, problem)

    def _finish(self, info: StreamInfo, problem: str | None) -> None:
        """The end state: stopped, or failed when the file ended early (truncated)."""
        damage = self._damage.describe()
        if damage:
            log.warning("source %s: %s; decoding went on", self.source_id, damage)
        expected = info.total_frames
        if self.stopping:
            self.set_state(SourceState.STOPPED, f"stopped after {self.frames_decoded} frames")
        elif problem or (expected and self._packets < expected):
            self.truncated = True
            of = f" of {expected}" if expected else ""
            cause = f": {problem}" if problem else ""
            self.set_state(
                SourceState.FAILED,
                f"{self.url} is truncated or damaged: decoded {self.frames_decoded}{of} frames{cause}",
            )
        else:
            skipped = f"; {damage}" if damage else ""
            self.set_state(SourceState.STOPPED, f"end of file after {self.frames_decoded} frames{skipped}")

    def _decode_pass(self, offset: float, pacer: _Pacer | None) -> float | None:
        """Emit every frame of the file once, ``offset`` seconds later on the media timeline.

        Returns where the pass ended on that timeline, or None when stopped or the buffer closed.
        """
        assert self.info is not None
        info, first = self.info, self.frames_decoded
        end = offset
        ahead = 1 if pacer is not None else _decode_ahead(info.width * info.height)
        for av_frame in _in_runs(self._frames, ahead):
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
                picture=self._picture(av_frame),
                keyframe=bool(av_frame.key_frame),
            )
            if not self.emit(frame):
                return None
            self.frames_decoded += 1
            end = pts + 1.0 / info.fps
        return end

    def _picture(self, av_frame: Any) -> Picture:
        """The decoded picture, turned upright when the file says it is displayed rotated."""
        if not self._turns:
            return AvPicture(av_frame)
        upright = np.rot90(reformat(av_frame, format="bgr24").to_ndarray(), self._turns)
        return ArrayPicture(np.ascontiguousarray(upright))


def _one_decoding_thread(pixels: int) -> bool:
    """Whether a file decodes on its capture thread alone. FFmpeg's frame threads cost ~20 % more
    CPU per frame (H.264 720p: 0.61 against 0.52 ms; 1080p: 1.5 against 1.2 ms) and pay only where
    decoding on one core would fall behind inference (~0.9 ms per frame) while other cores are free.
    Up to 720p one core keeps up; up to 1080p on two cores, the other core is inference's."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return pixels <= ONE_THREAD_PIXELS or (cores <= 2 and pixels <= ONE_THREAD_PIXELS_TWO_CORES)


def _decode_ahead(pixels: int) -> int:
    """How many frames of this size a file source decodes before preparing them (at least 1)."""
    return max(1, min(AHEAD_FRAMES, AHEAD_BYTES // max(1, pixels * 3 // 2)))


def _in_runs(frames: Iterator[Any], count: int) -> Iterator[Any]:
    """The same frames, ``count`` decoded before the first is handed on: decoding and the detector's
    prepare then each run on caches the other has not just filled (prepare of a 720p frame: 0.31 ms
    CPU right after its decoding, 0.25 ms in runs of 4)."""
    while run := list(itertools.islice(frames, count)):
        yield from run


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
