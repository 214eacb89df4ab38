"""Annotated (or redacted) video sink: H.264 MP4 with the input's size, frame rate and timestamps."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamproc.config.settings import VideoSinkSettings
from streamproc.core.atomic_files import discard_if_empty, is_stream, partial_path
from streamproc.core.errors import OutputError
from streamproc.core.frames import FrameResult, StreamInfo
from streamproc.core.memory import HUGE_PIXELS
from streamproc.core.pictures import plane_array
from streamproc.media.pixels import EncoderFrameReader, PixelFormat, PixelPlan
from streamproc.privacy.cover import Region, cover_yuv420
from streamproc.privacy.lookback import Lookback
from streamproc.sinks.base import Sink, ensure_writable_file, one_file, source_path
from streamproc.sinks.draw import draw_detections_yuv420
from streamproc.sinks.mp4 import CrashSafeMp4
from streamproc.sinks.retry import Retry
from streamproc.sinks.timestamps import Timeline

log = logging.getLogger(__name__)


@dataclass
class _Writer:
    file: CrashSafeMp4
    timeline: Timeline
    size: tuple[int, int]  # the first picture's: the video keeps it
    resized: int = 0  # pictures of another size, scaled to fit it


class VideoSink(Sink):
    """Draws detections on each frame and encodes it; one output file per source.

    Each file is crash-safe (see streamproc.sinks.mp4) and keeps the input's timing: frames keep
    their timestamps, repaired only where they would not increase (counted in ``repairs``).
    On a live run, a write error (disk full) sets the file aside as NAME.partial-N.mp4 (it plays up
    to the error); frames are skipped (``skipped``) until a new file can be started, with backoff.
    """

    def __init__(self, settings: VideoSinkSettings, lookback: int = 0) -> None:
        self.settings = settings
        # redacting: frames wait ``lookback`` frames for the regions of faces first seen later
        self._lookback = Lookback(lookback) if settings.redact is not None else None
        self.name = f"video:{settings.path}"
        # a redacted video shows no boxes unless asked: they would point at every hidden face
        self._draw_boxes = settings.draw_boxes if settings.draw_boxes is not None else settings.redact is None
        self._writers: dict[str, _Writer] = {}
        self._encoder_frame: EncoderFrameReader | None = None
        self._failed = False
        self._retry = Retry()
        self.skipped = 0  # frames not encoded while waiting to retry after a write error
        self._encoded = 0
        self._kept: Path | None = None  # where the file set aside after a write error is
        self._finished: list[tuple[Path, Path]] = []

    @property
    def problem(self) -> str | None:
        """Why frames are not being written right now (a live run retrying after a write error)."""
        return self._retry.problem

    @property
    def repairs(self) -> int:
        """Frames whose timestamp was missing, repeated, out of order or jumping."""
        return sum(writer.timeline.repairs for writer in self._writers.values())

    @property
    def finished_outputs(self) -> list[tuple[Path, Path]]:
        return self._finished

    @property
    def written(self) -> int:
        """Frames handed to the encoder, and those a redacted video holds back for late regions
        (encoded when it closes; an error then is the run's)."""
        return self._encoded + (self._lookback.held if self._lookback is not None else 0)

    @property
    def not_written(self) -> dict[str, int]:
        return {"write error, waiting to retry": self.skipped}

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.YUV420P})

    def open(self, pixels: PixelPlan) -> None:
        self._encoder_frame = pixels.yuv420p(self)
        if one_file(self.settings.path):
            ensure_writable_file(written_path(self.settings.path), "output video")

    def handle(self, result: FrameResult) -> None:
        if self._lookback is None:
            self._write(result, None)
            return
        for held in self._lookback.push(result):
            self._write(held.result, held.regions)

    def _drain(self) -> None:
        """Write the frames still held back for late regions: the run is over."""
        if self._lookback is not None and not self._failed:
            for held in self._lookback.drain():
                self._write(held.result, held.regions)

    def _write(self, result: FrameResult, cover: list[Region] | None) -> None:
        """Encode one frame (``cover``: the regions to hide on it); a write error on a live run
        sets the file aside to try again later."""
        try:
            self._encode(result, cover)
        except OSError as exc:
            if not result.frame.stream.live or self._retry.exhausted:
                self._failed = True  # close() keeps the partial files and leaves the targets alone
                raise
            self.skipped += 1  # the frame it failed on
            self._set_aside(result.frame.source_id, exc)
        except Exception:
            self._failed = True
            raise

    def _encode(self, result: FrameResult, cover: list[Region] | None) -> None:
        frame = result.frame
        writer = self._writers.get(frame.source_id)
        if writer is None:
            if not self._retry.due:
                self.skipped += 1
                return
            writer = self._open_writer(frame.stream)
        assert self._encoder_frame is not None, "open() first"
        # at the picture's own size: an odd-sized one is padded, never scaled
        picture = self._encoder_frame(frame, frame.width, frame.height)
        same_size = (frame.width, frame.height) == writer.size
        out = _padded(picture, writer.file.stream) if same_size else picture
        self._draw(out, result, cover)
        if not same_size:  # drawn at its own size, then fitted into the video's
            out = self._resized(writer, out, frame.source_id)
        out.pts = writer.timeline.next(frame.pts_raw)
        out.time_base = frame.stream.time_base
        writer.file.write(out)
        self._encoded += 1
        # recovered once video reaches the disk (the encoder and the muxer hold the first frames)
        if self._retry.problem is not None and writer.file.holds_video and self._retry.succeeded():
            log.warning("annotated video of %s: writing again (%d skipped)", frame.source_id, self.skipped)

    def _draw(self, picture: av.VideoFrame, result: FrameResult, cover: list[Region] | None) -> None:
        """Hide the regions to cover (a redacted video), then draw the boxes (unless redacting)."""
        planes = [plane_array(plane) for plane in picture.planes]
        if self.settings.redact is not None and cover:
            cover_yuv420(planes, cover, self.settings.redact)
        if self._draw_boxes:
            draw_detections_yuv420(
                planes, result.detections, self.settings.draw_keypoints, self.settings.draw_scores
            )

    @staticmethod
    def _resized(writer: _Writer, picture: av.VideoFrame, source_id: str) -> av.VideoFrame:
        """A picture whose size changed mid-stream (a camera's new resolution, photos of several
        sizes): scaled to fit the video's first size, aspect kept, centred on black."""
        if not writer.resized:
            width, height = writer.size
            log.warning(
                "annotated video of %s: the picture size changed from %dx%d to %dx%d; the video keeps"
                " %dx%d (pictures of another size are scaled to fit, with black bars)",
                source_id,
                width,
                height,
                picture.width,
                picture.height,
                width,
                height,
            )
        writer.resized += 1
        return fitted(picture, writer.file.stream.width, writer.file.stream.height)

    def _set_aside(self, source_id: str, error: OSError) -> None:
        """Live runs: keep what this source's file holds under a new name and try again later."""
        writer = self._writers.pop(source_id, None)
        if writer is not None:
            self._kept = writer.file.abandon(aside=True) or self._kept
        problem = f"cannot write the annotated video of {source_id}: {error.strerror or error}"
        delay = self._retry.failed(problem)
        log.warning("%s; frames skipped, trying again in %g s (live run)", problem, delay)

    def _open_writer(self, info: StreamInfo) -> _Writer:
        path = source_path(self.settings.path, info.source_id)
        ensure_writable_file(written_path(path), "output video")
        rate = Fraction(info.fps).limit_denominator(1001)
        width, height = _even(info.width), _even(info.height)
        options = encoder_options(self.settings, width * height)
        audio = info.media_file if self.settings.audio else None
        file = CrashSafeMp4(path, width, height, info.time_base, rate, options, audio)
        timeline = Timeline(info.time_base, info.fps)
        writer = self._writers[info.source_id] = _Writer(file, timeline, (info.width, info.height))
        odd = (width, height) != (info.width, info.height)
        padded = f" (padded to {width}x{height}: H.264 needs even sizes)" if odd else ""
        log.info("writing annotated video for %s to %s%s", info.source_id, writer.file.partial, padded)
        return writer

    def close(self) -> None:
        errors = []
        try:
            self._drain()
        except Exception as exc:  # the file is kept as it is (partial), as after any write error
            errors.append(f"the last frames: {exc}")
        for source_id, writer in self._writers.items():
            if writer.timeline.repairs:
                log.warning(
                    "annotated video of %s: %d frame timestamps were missing, repeated, out of order or"
                    " jumping and were repaired",
                    source_id,
                    writer.timeline.repairs,
                )
            if self._failed:
                writer.file.abandon()
                continue
            try:
                if (finished := writer.file.finish()) is not None:
                    self._finished.append(finished)
                self._retry.succeeded()  # space came back in the end
            except Exception as exc:  # close every writer even if one fails
                errors.append(f"{source_id}: {exc}")
                writer.file.abandon()
        if not self._writers and one_file(self.settings.path):
            discard_if_empty(written_path(self.settings.path))  # made by open(); no frame came
        self._writers.clear()
        problems = ["could not finish output video " + "; ".join(errors)] if errors else []
        if self._retry.problem:  # the run ended while waiting to retry: say what is missing
            kept = f"; the video before the error plays in {self._kept}" if self._kept else ""
            problems.append(f"{self._retry.reason}: {self.skipped} frames not encoded{kept}")
        if problems:
            raise OutputError("; ".join(problems))


# no B-frames, no look-ahead, no lowres planes (constant QP, no scene-cut or weighted-prediction
# analysis), no half-pixel planes: each picture x264 keeps costs over 100 MB at 8192x8192
_HUGE_X264 = "bframes=0:scenecut=0:weightp=0:rc-lookahead=0:sync-lookahead=0:mbtree=0:subme=0"


def encoder_options(settings: VideoSinkSettings, pixels: int = 0) -> dict[str, str]:
    """libx264 options of the sink. One frame thread per core: x264's default (1.5 per core) made
    ~12 % more CPU per frame on 2 cores, where decoding and inference need the same cores.
    Pictures of more than HUGE_PIXELS are encoded with one thread, at a constant QP of the crf value
    and without the analyses that need extra pictures (peak RSS of a whole 8192x8192 run: 3.0 ->
    1.3 GB)."""
    threads = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if pixels > HUGE_PIXELS:
        return {"preset": settings.preset, "threads": "1", "x264-params": f"qp={settings.crf}:{_HUGE_X264}"}
    return {"crf": str(settings.crf), "preset": settings.preset, "threads": threads}


def written_path(path: Path) -> Path:
    """Where the video of ``path`` is written while the run goes on: beside it, or in place for a
    device or pipe."""
    return path if is_stream(path) else partial_path(path)


def _padded(picture: av.VideoFrame, stream: Any) -> av.VideoFrame:
    """``picture`` (ours to draw on) at the encoder's size: an odd-sized one is copied into the one
    pixel larger even frame, its last row and column repeated; an even-sized one is returned as is."""
    if (picture.width, picture.height) == (stream.width, stream.height):
        return picture
    copy = av.VideoFrame(stream.width, stream.height, "yuv420p")
    for target, plane in zip(copy.planes, picture.planes, strict=True):
        _copy_padded(plane_array(target), plane_array(plane))
    return copy


def fitted(picture: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``picture`` scaled to fit ``width`` x ``height`` (even), aspect kept, centred on black."""
    scale = min(width / picture.width, height / picture.height)
    inner_width = min(width, max(2, round(picture.width * scale / 2) * 2))
    inner_height = min(height, max(2, round(picture.height * scale / 2) * 2))
    inner = picture.reformat(inner_width, inner_height, "yuv420p")
    out = av.VideoFrame(width, height, "yuv420p")
    left, top = (width - inner_width) // 4 * 2, (height - inner_height) // 4 * 2  # even: chroma aligns
    for index, (target, plane) in enumerate(zip(out.planes, inner.planes, strict=True)):
        shift = 0 if index == 0 else 1  # chroma planes are half the size
        canvas = plane_array(target)
        canvas[:] = 16 if index == 0 else 128  # black (limited range)
        source = plane_array(plane)
        rows, columns = source.shape
        canvas[top >> shift : (top >> shift) + rows, left >> shift : (left >> shift) + columns] = source
    return out


def _copy_padded(target: np.ndarray, plane: np.ndarray) -> None:
    """Copy ``plane`` into the top left of ``target``; repeat its edges into what is left."""
    rows, columns = plane.shape
    target[:rows, :columns] = plane
    target[rows:, :columns] = plane[-1:, :]
    target[:, columns:] = target[:, columns - 1 : columns]


def _even(value: int) -> int:
    """yuv420p needs even dimensions: odd ones are padded by one row or column."""
    return value + value % 2
