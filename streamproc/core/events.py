"""Events: what tracks and key frames tell subscribers (JSON Lines, MQTT).

Every event is one self-contained JSON object (``to_dict``) following
``streamproc/schemas/event.schema.json``; ``schema_version`` changes only when a field changes
meaning or goes away (new optional fields keep the version).

- ``new``: a face track was confirmed (seen ``min_hits`` frames in a row);
- ``update``: something worth telling changed (``changes``: ``best`` view / snapshot,
  ``classification``), at most once per ``update_interval_s`` per track;
- ``end``: the track is gone (``end_reason``: ``lost``, ``source_ended``, ``stopped`` or
  ``worker_lost``, sent by a distributed run's driver for a worker that died); every ``new`` gets
  exactly one ``end``;
- ``scene``: a whole frame was classified (key frame, every N frames or a scene change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np

from streamproc.core import rounding
from streamproc.core.classification import Classification

SCHEMA_VERSION = 1
SCHEMA_PATH = files("streamproc") / "schemas" / "event.schema.json"

TrackEventType = Literal["new", "update", "end"]
EndReason = Literal["lost", "source_ended", "stopped", "worker_lost"]


@dataclass(frozen=True)
class Moment:
    """When something happened: frame index, media time (s) and capture wall-clock time (epoch s)."""

    frame: int
    pts: float | None
    wall_time: float

    def seconds_since(self, other: Moment) -> float:
        """Media time between two moments (wall-clock time when a timestamp is missing)."""
        if self.pts is not None and other.pts is not None:
            return self.pts - other.pts
        return self.wall_time - other.wall_time


@dataclass(frozen=True)
class Observation:
    """One face as seen in one frame, in full-frame pixels."""

    at: Moment
    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    keypoints: np.ndarray  # (k, 2)
    quality: float  # score times the fraction of the box inside the frame


def moment_dict(at: Moment) -> dict[str, Any]:
    return {
        "frame": at.frame,
        "pts": rounding.seconds(at.pts),
        "wall_time": rounding.seconds(at.wall_time),
    }


def view_dict(view: Observation) -> dict[str, Any]:
    return {
        "box": rounding.pixels(view.box),
        "score": rounding.score(view.score),
        "keypoints": rounding.pixels(view.keypoints),
        **moment_dict(view.at),
    }


@dataclass(frozen=True)
class Snapshot:
    """Saved JPEG files of a track's best view."""

    path: Path
    frame_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "frame_path": None if self.frame_path is None else str(self.frame_path),
        }


@dataclass(frozen=True, eq=False)
class BestView:
    """A track's new best view, for the snapshot sink to write: the face crop (BGR, already sized),
    the whole frame when full-frame snapshots are on, and the face box in that frame."""

    crop: np.ndarray
    frame: np.ndarray | None
    box: np.ndarray


@dataclass(frozen=True)
class TrackEvent:
    """A face track's ``new`` / ``update`` / ``end``: its whole current state, not a diff."""

    type: TrackEventType
    event_id: str
    seq: int  # 0 for new, then 1, 2, ... per track: gaps mean a subscriber missed one
    source_id: str
    track_id: str
    at: Moment  # the frame that raised the event
    width: int
    height: int
    start: Moment
    last: Observation
    best: Observation
    top_score: float
    classification: Classification | None = None
    snapshot: Snapshot | None = None
    view: BestView | None = field(default=None, repr=False, compare=False)  # pixels: not serialised
    changes: tuple[str, ...] = ()
    end_reason: EndReason | None = None
    label: str = "face"

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header(self),
            "seq": self.seq,
            "start": moment_dict(self.start),
            "end": moment_dict(self.last.at) if self.type == "end" else None,
            "duration_s": rounding.seconds(self.last.at.seconds_since(self.start)),
            "box": rounding.pixels(self.last.box),
            "score": rounding.score(self.last.score),
            "keypoints": rounding.pixels(self.last.keypoints),
            "top_score": rounding.score(self.top_score),
            "best": view_dict(self.best),
            "classification": None if self.classification is None else self.classification.to_dict(),
            "snapshot": None if self.snapshot is None else self.snapshot.to_dict(),
            "changes": list(self.changes),
            "end_reason": self.end_reason,
        }


@dataclass(frozen=True)
class SceneEvent:
    """A whole frame classified; ``trigger`` says why this frame: every_n, keyframe or scene_change."""

    event_id: str
    source_id: str
    at: Moment
    width: int
    height: int
    trigger: str
    classification: Classification
    type: Literal["scene"] = "scene"
    track_id: None = None
    label: str = "scene"

    def to_dict(self) -> dict[str, Any]:
        return {
            **_header(self),
            "trigger": self.trigger,
            "classification": self.classification.to_dict(),
        }


@dataclass(frozen=True)
class WorkerLostEnd:
    """The ``end`` of a track whose worker died, written by a distributed run's driver: the track's
    last published state (its latest ``new``/``update`` as ``to_dict`` gave it), ended there."""

    last: dict[str, Any]
    type: Literal["end"] = "end"
    end_reason: EndReason = "worker_lost"

    @property
    def source_id(self) -> str:
        return str(self.last["source"])

    @property
    def track_id(self) -> str:
        return str(self.last["track_id"])

    def to_dict(self) -> dict[str, Any]:
        seq = int(self.last["seq"]) + 1
        seen = {key: self.last[key] for key in ("frame", "pts", "wall_time")}
        return {
            **self.last,
            "type": self.type,
            "event_id": f"{self.track_id}.{seq}",
            "seq": seq,
            "end": seen,
            "changes": [],
            "end_reason": self.end_reason,
        }


Event = TrackEvent | SceneEvent | WorkerLostEnd  # what stages raise and sinks write


def _header(event: TrackEvent | SceneEvent) -> dict[str, Any]:
    """The fields every event starts with: what, which source and track, the frame that raised it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "type": event.type,
        "event_id": event.event_id,
        "source": event.source_id,
        "track_id": event.track_id,
        "label": event.label,
        **moment_dict(event.at),
        "width": event.width,
        "height": event.height,
    }
