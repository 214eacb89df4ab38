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
from streamproc.sinks.base import Sink, ensure_writable_file, source_path

log = logging.getLogger(__name__)


@dataclass
class _Writer:
    container: Any
    stream: Any
    last_pts: int | None = None


class VideoSink(Sink):
    """Draws detections on each frame and encodes it; one output file per source."""

    needs_pictures = True

    def __init__(self, settings: VideoSinkSettings) -> None:
        self.settings = settings
        self.name = f"video:{settings.path}"
        self._writers: dict[str, _Writer] = {}

    def open(self) -> None:
        if "{source}" not in str(self.settings.path):
            ensure_writable_file(self.settings.path, "output video")

    def handle(self, result: FrameResult) -> None:
        frame = result.frame
        writer = self._writers.get(frame.source_id) or self._open_writer(frame.stream)
        out = _encoder_frame(frame.picture, writer.stream.width, writer.stream.height)
        planes = [_plane_array(plane) for plane in out.planes]
        draw_detections_yuv420(
            planes, result.detections, self.settings.draw_keypoints, self.settings.draw_scores
        )
        pts = frame.pts_raw if frame.pts_raw is not None else frame.index
        if writer.last_pts is not None and pts <= writer.last_pts:
            pts = writer.last_pts + 1  # the muxer rejects non-increasing timestamps
        writer.last_pts = pts
        out.pts = pts
        out.time_base = frame.stream.time_base
        for packet in writer.stream.encode(out):
            writer.container.mux(packet)

    def _open_writer(self, info: StreamInfo) -> _Writer:
        path = source_path(self.settings.path, info.source_id)
        if len(self._writers) and "{source}" not in str(self.settings.path):
            raise OutputError(
                f"output video {path} cannot hold several sources: put '{{source}}' in the path"
            )
        ensure_writable_file(path, "output video")
        container = av.open(str(path), mode="w", options={"movflags": "+faststart"})
        rate = Fraction(info.fps).limit_denominator(1001)
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = _even(info.width), _even(info.height)
        stream.pix_fmt = "yuv420p"
        stream.time_base = info.time_base
        stream.options = encoder_options(self.settings)
        writer = self._writers[info.source_id] = _Writer(container, stream)
        log.info("writing annotated video for %s to %s", info.source_id, path)
        return writer

    def close(self) -> None:
        errors = []
        for source_id, writer in self._writers.items():
            try:
                for packet in writer.stream.encode(None):
                    writer.container.mux(packet)
                writer.container.close()
            except Exception as exc:  # close every writer even if one fails
                errors.append(f"{source_id}: {exc}")
        self._writers.clear()
        if errors:
            raise OutputError("could not finish output video " + "; ".join(errors))


def encoder_options(settings: VideoSinkSettings) -> dict[str, object]:
    """libx264 options of the sink. One frame thread per core: x264's default (1.5 per core) made
    ~12 % more CPU per frame on 2 cores, where decoding and inference need the same cores."""
    threads = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return {"crf": str(settings.crf), "preset": settings.preset, "threads": threads}


def _encoder_frame(picture: Picture, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame of the encoder's size that this sink may draw on.

    A decoded picture goes straight to yuv420p (usually no conversion at all, then one copy of the
    planes); only pictures that exist as BGR arrays (OpenCV cameras) are converted from BGR.
    """
    source = (
        picture.av_frame
        if isinstance(picture, AvPicture)
        else av.VideoFrame.from_ndarray(picture.bgr(), format="bgr24")
    )
    # with the thread's reused swscale context; the original stays untouched for other sinks
    converted = reformat(source, format="yuv420p", width=width, height=height)
    if converted is not source:
        return converted
    copy = av.VideoFrame(width, height, "yuv420p")
    for target, plane in zip(copy.planes, source.planes, strict=True):
        np.copyto(_plane_array(target), _plane_array(plane))
    return copy


def _plane_array(plane: Any) -> np.ndarray:
    """A writable (height, width) view of one plane of a VideoFrame, without its row padding."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _even(value: int) -> int:
    """yuv420p needs even dimensions."""
    return value - value % 2
