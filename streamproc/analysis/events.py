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

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np

from streamproc.analysis.tracking import Moment, Observation, Track
from streamproc.core import rounding
from streamproc.core.frames import Classification

SCHEMA_VERSION = 1
SCHEMA_PATH = files("streamproc") / "schemas" / "event.schema.json"

TrackEventType = Literal["new", "update", "end"]
EndReason = Literal["lost", "source_ended", "stopped", "worker_lost"]


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


class RunIds:
    """Ids unique across sources and live runs: ``<run>-<n>`` for tracks, ``<track>.<seq>`` for events.

    The run part is the start time (UTC, to the second) plus a random suffix, so ids sort by time
    and two processes started in the same second still differ. A run over files only is named after
    them instead (:func:`files_run_id`): running the same files again gives the same ids.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)
        self._tracks = 0
        self._scenes = 0

    def track_id(self) -> str:
        self._tracks += 1
        return f"{self.run_id}-{self._tracks}"

    def scene_id(self) -> str:
        self._scenes += 1
        return f"{self.run_id}-s{self._scenes}"


def files_run_id(paths: list[str]) -> str | None:
    """A run id from the inputs' identity (absolute path, size, mtime), so that a file processed
    again (a retried task of a distributed run) raises the same event ids; None when an input is not
    a readable file. The time part is the newest input's mtime, so ids still sort roughly by time."""
    identity = hashlib.sha256()
    newest = 0.0
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            return None
        # the name as the file system holds it: also names that are not UTF-8 (cam\xe9ra.mp4)
        name = os.fsencode(os.path.abspath(path))
        identity.update(name + f"\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        newest = max(newest, info.st_mtime)
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(newest)) + "-f" + identity.hexdigest()[:8]


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


Event = TrackEvent | SceneEvent


def _header(event: Event) -> dict[str, Any]:
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


def track_event(
    kind: TrackEventType,
    track: Track,
    seq: int,
    source_id: str,
    at: Moment,
    size: tuple[int, int],
    **state: Any,
) -> TrackEvent:
    """A TrackEvent from a confirmed track's current state."""
    assert track.track_id is not None and track.best is not None, "only confirmed tracks raise events"
    return TrackEvent(
        type=kind,
        event_id=f"{track.track_id}.{seq}",
        seq=seq,
        source_id=source_id,
        track_id=track.track_id,
        at=at,
        width=size[0],
        height=size[1],
        start=track.first.at,
        last=track.last,
        best=track.best,
        top_score=track.top_score,
        **state,
    )
