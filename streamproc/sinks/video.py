"""Annotated video sink: H.264 MP4 with the input's size, frame rate and timestamps."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from streamproc.config import VideoSinkSettings
from streamproc.draw import draw_detections_yuv420
from streamproc.errors import OutputError
from streamproc.frames import AvPicture, FrameResult, Picture, StreamInfo, reformat
from streamproc.outputs import partial_path
from streamproc.sinks.base import Sink, ensure_writable_file, source_path
from streamproc.sinks.mp4 import CrashSafeMp4
from streamproc.sinks.timestamps import Timeline

log = logging.getLogger(__name__)


@dataclass
class _Writer:
    file: CrashSafeMp4
    timeline: Timeline


class VideoSink(Sink):
    """Draws detections on each frame and encodes it; one output file per source.

    Each file is crash-safe (see streamproc.sinks.mp4) and keeps the input's timing: frames keep
    their timestamps, repaired only where they would not increase (counted in ``repairs``).
    """

    needs_pictures = True

    def __init__(self, settings: VideoSinkSettings) -> None:
        self.settings = settings
        self.name = f"video:{settings.path}"
        self._writers: dict[str, _Writer] = {}
        self._failed = False

    @property
    def repairs(self) -> int:
        """Frames whose timestamp was missing, repeated, out of order or jumping."""
        return sum(writer.timeline.repairs for writer in self._writers.values())

    def open(self) -> None:
        if "{source}" not in str(self.settings.path):
            ensure_writable_file(partial_path(self.settings.path), "output video")

    def handle(self, result: FrameResult) -> None:
        try:
            self._encode(result)
        except Exception:
            self._failed = True  # close() keeps the partial files and leaves the targets alone
            raise

    def _encode(self, result: FrameResult) -> None:
        frame = result.frame
        writer = self._writers.get(frame.source_id) or self._open_writer(frame.stream)
        stream = writer.file.stream
        out = _encoder_frame(frame.picture, stream.width, stream.height)
        planes = [_plane_array(plane) for plane in out.planes]
        draw_detections_yuv420(
            planes, result.detections, self.settings.draw_keypoints, self.settings.draw_scores
        )
        out.pts = writer.timeline.next(frame.pts_raw)
        out.time_base = frame.stream.time_base
        writer.file.write(out)

    def _open_writer(self, info: StreamInfo) -> _Writer:
        path = source_path(self.settings.path, info.source_id)
        ensure_writable_file(partial_path(path), "output video")
        rate = Fraction(info.fps).limit_denominator(1001)
        width, height = _even(info.width), _even(info.height)
        options = encoder_options(self.settings, width * height)
        file = CrashSafeMp4(path, width, height, info.time_base, rate, options)
        writer = self._writers[info.source_id] = _Writer(file, Timeline(info.time_base, info.fps))
        padded = f" (padded to {width}x{height}: H.264 needs even sizes)" if (width, height) != (
            info.width,
            info.height,
        ) else ""
        log.info("writing annotated video for %s to %s%s", info.source_id, writer.file.partial, padded)
        return writer

    def close(self) -> None:
        errors = []
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
                writer.file.finish()
            except Exception as exc:  # close every writer even if one fails
                errors.append(f"{source_id}: {exc}")
                writer.file.abandon()
        self._writers.clear()
        if errors:
            raise OutputError("could not finish output video " + "; ".join(errors))


HUGE_PIXELS = 3840 * 2160 * 2  # beyond twice 4K, x264's look-ahead and threads hold gigabytes
# no look-ahead, no lowres planes (constant QP, no scene-cut or weighted-prediction analysis), no
# half-pixel planes: each picture x264 keeps costs over 100 MB at 8192x8192
_HUGE_X264 = "scenecut=0:weightp=0:rc-lookahead=0:sync-lookahead=0:mbtree=0:subme=0"


def encoder_options(settings: VideoSinkSettings, pixels: int = 0) -> dict[str, str]:
    """libx264 options of the sink. One frame thread per core: x264's default (1.5 per core) made
    ~12 % more CPU per frame on 2 cores, where decoding and inference need the same cores.
    Pictures of more than HUGE_PIXELS are encoded with one thread, at a constant QP of the crf value
    and without the analyses that need extra pictures (peak RSS at 8192x8192: 3.0 -> 1.3 GB)."""
    threads = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if pixels > HUGE_PIXELS:
        return {"preset": settings.preset, "threads": "1", "x264-params": f"qp={settings.crf}:{_HUGE_X264}"}
    return {"crf": str(settings.crf), "preset": settings.preset, "threads": threads}


def _encoder_frame(picture: Picture, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame of the encoder's size that this sink may draw on.

    A decoded picture goes straight to yuv420p (usually no conversion at all, then one copy of the
    planes); only pictures that exist as BGR arrays (OpenCV cameras, rotated files) are converted
    from BGR. An odd-sized picture is copied into the (one larger) even frame, its last row and
    column repeated: never scaled.
    """
    source = (
        picture.av_frame
        if isinstance(picture, AvPicture)
        else av.VideoFrame.from_ndarray(picture.bgr(), format="bgr24")
    )
    # with the thread's reused swscale context; the original stays untouched for other sinks
    converted = reformat(source, format="yuv420p")
    if converted is not source and (converted.width, converted.height) == (width, height):
        return converted
    copy = av.VideoFrame(width, height, "yuv420p")
    for target, plane in zip(copy.planes, converted.planes, strict=True):
        _copy_padded(_plane_array(target), _plane_array(plane))
    return copy


def _copy_padded(target: np.ndarray, plane: np.ndarray) -> None:
    """Copy ``plane`` into the top left of ``target``; repeat its edges into what is left."""
    rows, columns = plane.shape
    target[:rows, :columns] = plane
    target[rows:, :columns] = plane[-1:, :]
    target[:, columns:] = target[:, columns - 1 : columns]


def _plane_array(plane: Any) -> np.ndarray:
    """A writable (height, width) view of one plane of a VideoFrame, without its row padding."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _even(value: int) -> int:
    """yuv420p needs even dimensions: odd ones are padded by one row or column."""
    return value + value % 2
