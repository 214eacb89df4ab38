"""JSON records of results, shared by the sinks that write them (JSON Lines, MQTT)."""

from __future__ import annotations

from typing import Any

from streamproc.core import rounding
from streamproc.core.frames import FrameResult, StatusEvent


def frame_record(result: FrameResult) -> dict[str, Any]:
    """The per-frame record: where and when the frame was, and the faces in it (pixels)."""
    frame = result.frame
    record = {
        "type": "frame",
        "source": frame.source_id,
        "frame": frame.index,
        "pts": rounding.seconds(frame.pts),
        "wall_time": rounding.seconds(frame.wall_time),
        "width": frame.width,
        "height": frame.height,
        "faces": result.detections.to_records(),
    }
    if frame.stream.still:  # photos: which one
        record["image"] = frame.stream.url
    for event in result.events:
        if event.type == "scene":  # the frame was classified whole
            record["scene"] = event.classification.to_dict()
    return record


def status_record(event: StatusEvent) -> dict[str, Any]:
    """``{"type": "status", "source", "state", "message", "wall_time", "width", "height"}``."""
    return {
        "type": "status",
        "source": event.source_id,
        "state": event.state.value,
        "message": event.message,
        "wall_time": rounding.seconds(event.wall_time),
        "width": event.width,
        "height": event.height,
    }
