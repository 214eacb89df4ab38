"""Face tracks for the report, from the best information the results hold:

1. track events (``new``/``update``/``end``) when tracking ran;
2. else ``track_id`` on the faces of per-frame records;
3. else (the documented fallback for results written without tracking) :func:`chain_faces`: the
   tracker of live runs (:mod:`streamproc.analysis.tracking`) chains faces across frames by box overlap.

Times are seconds from the source's first frame: media time (pts) when the records have it, else
wall-clock time.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamproc.analysis.tracking import Tracker
from streamproc.config.settings import TrackingSettings
from streamproc.core.events import Moment
from streamproc.core.frames import Detections
from streamproc.report.data import FrameRow, SourceRecords, is_number, number

CHAIN_MIN_IOU = 0.3  # boxes of the same face in consecutive frames overlap well above this
CHAIN_MAX_GAP_S = 0.5  # a face missed for longer than this starts a new track


@dataclass(frozen=True)
class Clock:
    """Maps a record's media time (pts) or wall time to seconds from the source's start."""

    origin_pts: float | None
    origin_wall: float | None

    def seconds(self, pts: float | None, wall: float | None) -> float | None:
        if pts is not None and self.origin_pts is not None:
            return pts - self.origin_pts
        if wall is not None and self.origin_wall is not None:
            return wall - self.origin_wall
        return None


@dataclass
class Track:
    track_id: str
    number: int = 0  # 1, 2, 3... per source in order of appearance: what the page shows
    start: float | None = None  # seconds from the source's start
    end: float | None = None
    start_wall: float | None = None
    frames: int | None = None
    best_score: float | None = None
    best_box: list[float] | None = None
    best_frame: int | None = None  # frame index of the best view, for cropping a thumbnail
    best_pts: float | None = None
    snapshot: str | None = None
    classification: list[tuple[str, float]] = field(default_factory=list)
    thumbnail: str | None = None  # data: URI, filled in by streamproc.report.thumbs

    @property
    def duration(self) -> float | None:
        return self.end - self.start if self.start is not None and self.end is not None else None

    def offer_best(self, score: float | None, box: Any, frame: int | None, pts: float | None) -> None:
        """Keep the highest-scoring view of the face."""
        if score is None or (self.best_score is not None and score <= self.best_score):
            return
        self.best_score = score
        self.best_box = [float(v) for v in box] if _is_box(box) else self.best_box
        self.best_frame, self.best_pts = frame, pts


@dataclass
class SourceTracks:
    """What the report shows for one source."""

    source_id: str
    clock: Clock
    timeline: list[tuple[float, int]]  # (seconds, faces in that frame)
    frame_interval: float | None
    tracks: list[Track]
    method: str  # how the tracks were found: "track events", "track ids" or "IoU chaining"


def source_tracks(records: SourceRecords) -> SourceTracks:
    clock = _clock(records)
    frames = [(row, clock.seconds(row.pts, row.wall_time)) for row in records.frames]
    timed = [(row, t) for row, t in frames if t is not None]
    interval = _interval([t for _, t in timed])
    timeline = [(t, len(row.faces)) for row, t in timed]
    if any("track_id" in face for row, _ in timed for face in row.faces):
        method, ids = "track ids", [[face.get("track_id") for face in row.faces] for row, _ in timed]
    else:
        method, ids = "IoU chaining", chain_faces(timed)
    from_frames = _tracks_from_ids(timed, ids, interval)
    if records.events:
        method = "track events"
        tracks = _tracks_from_events(records.events, clock, {t.track_id: t for t in from_frames})
    else:
        tracks = from_frames
    for seen, track in enumerate(tracks, start=1):  # first seen first, as `streamproc events` counts
        track.number = seen
    tracks.sort(key=lambda t: (t.start is None, t.start or 0.0, t.track_id))
    return SourceTracks(records.source_id, clock, timeline, interval, tracks, method)


def chain_faces(frames: list[tuple[FrameRow, float]]) -> list[list[str | None]]:
    """Fallback for results written without tracking: a track id for every face of every frame,
    from the tracker live runs use, set so that every face starts a track at once (one sighting
    confirms, any score may start one) and a face missed for CHAIN_MAX_GAP_S ends its track."""
    settings = TrackingSettings(
        min_hits=1,
        max_missed=100_000,
        max_missed_s=CHAIN_MAX_GAP_S,
        iou_threshold=CHAIN_MIN_IOU,
        high_score=0.0,
    )
    numbers = itertools.count(1)
    tracker = Tracker(settings, lambda: str(next(numbers)))
    labels: list[list[str | None]] = []
    for index, (row, t) in enumerate(frames):
        usable = [i for i, face in enumerate(row.faces) if _is_box(face.get("box"))]
        boxes = np.array([row.faces[i]["box"] for i in usable], np.float32).reshape(-1, 4)
        scores = np.array([number(row.faces[i], "score") or 1.0 for i in usable], np.float32)
        faces = Detections(boxes, scores, np.zeros((len(usable), 0, 2), np.float32))
        # the picture's size is not in the records: an unbounded frame keeps every face whole
        step = tracker.update(Moment(index, t, row.wall_time or t), faces, 1 << 30, 1 << 30)
        frame_labels: list[str | None] = [None] * len(row.faces)
        for position, track in zip(usable, step.assigned, strict=True):
            frame_labels[position] = track.track_id if track is not None else None
        labels.append(frame_labels)
    return labels


def _tracks_from_ids(
    frames: list[tuple[FrameRow, float]], ids: list[list[Any]], interval: float | None
) -> list[Track]:
    tracks: dict[str, Track] = {}
    for (row, t), frame_ids in zip(frames, ids, strict=True):
        for face, tid in zip(row.faces, frame_ids, strict=True):
            if tid is None:
                continue
            track = tracks.setdefault(str(tid), Track(str(tid), start=t, start_wall=row.wall_time, frames=0))
            track.end = t + (interval or 0.0)  # the face is shown until the next frame
            track.frames = (track.frames or 0) + 1
            track.offer_best(number(face, "score"), face.get("box"), row.index, row.pts)
    return list(tracks.values())


def _tracks_from_events(events: list[dict[str, Any]], clock: Clock, seen: dict[str, Track]) -> list[Track]:
    """Merge each track's events in file order; fields the events lack come from the frames."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[str(event["track_id"])].append(event)
    tracks = []
    for tid, track_events in grouped.items():
        track = Track(tid)
        for event in track_events:
            _apply_event(track, event, clock)
        _fill_from(track, seen.get(tid))
        tracks.append(track)
    return tracks


def _apply_event(track: Track, event: dict[str, Any], clock: Clock) -> None:
    kind = event.get("type")
    start_pts, start_wall = _moment(
        event.get("start"), number(event, "start_pts"), number(event, "start_time")
    )
    if kind == "new":
        start_pts = start_pts if start_pts is not None else number(event, "pts")
        start_wall = start_wall if start_wall is not None else number(event, "wall_time")
    start = clock.seconds(start_pts, start_wall)
    if start is not None and (track.start is None or start < track.start):
        track.start, track.start_wall = start, start_wall
    if kind == "end":
        end_pts, end_wall = number(event, "end_pts", "pts"), number(event, "end_time", "wall_time")
        end = clock.seconds(*_moment(event.get("end"), end_pts, end_wall))
        duration = number(event, "duration", "duration_s")
        if end is None and duration is not None and track.start is not None:
            end = track.start + duration
        track.end = end if end is not None else track.end
    frames = number(event, "frames", "frame_count", "hits")
    if frames is not None:
        track.frames = max(int(frames), track.frames or 0)
    best = event.get("best")
    if isinstance(best, dict):
        frame = best.get("frame")
        track.offer_best(
            number(best, "score"),
            best.get("box"),
            frame if isinstance(frame, int) else None,
            number(best, "pts"),
        )
    snapshot = event.get("snapshot")
    if isinstance(snapshot, dict):  # streamproc's events: {"path", "frame_path"}
        snapshot = snapshot.get("path")
    if isinstance(snapshot, str) and snapshot:
        track.snapshot = snapshot
    classes = _classification(event.get("classification"))
    if classes:
        track.classification = classes


def _moment(value: Any, pts: float | None, wall: float | None) -> tuple[float | None, float | None]:
    """(pts, wall time) of streamproc's ``start``/``end`` objects, else the given fallbacks."""
    if isinstance(value, dict):
        return number(value, "pts"), number(value, "wall_time")
    return pts, wall


def _fill_from(track: Track, frames: Track | None) -> None:
    if frames is None:
        return
    for name in ("start", "end", "start_wall", "frames"):
        if getattr(track, name) is None:
            setattr(track, name, getattr(frames, name))
    if track.best_score is None:
        track.offer_best(frames.best_score, frames.best_box, frames.best_frame, frames.best_pts)


def _classification(value: Any) -> list[tuple[str, float]]:
    """[{label, score}], [[label, score]] or {label: score} -> [(label, score)], best first."""
    if isinstance(value, dict) and isinstance(value.get("top_k"), list):  # streamproc's events
        value = value["top_k"]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict):
                items.append((item.get("label"), item.get("score")))
            elif isinstance(item, list | tuple) and len(item) >= 2:
                items.append((item[0], item[1]))
    else:
        return []
    found = [(str(label), float(score)) for label, score in items if label is not None and is_number(score)]
    return sorted(found, key=lambda pair: -pair[1])


def _clock(records: SourceRecords) -> Clock:
    pts = [(row.pts, row.wall_time) for row in records.frames if row.pts is not None]
    if pts:
        first = min(pts, key=lambda pair: pair[0])
        walls = [row.wall_time for row in records.frames if row.wall_time is not None]
        return Clock(first[0], first[1] if first[1] is not None else (min(walls) if walls else None))
    walls = [row.wall_time for row in records.frames if row.wall_time is not None]
    event_pts = [v for e in records.events if (v := number(e, "start_pts", "pts")) is not None]
    event_walls = [v for e in records.events if (v := number(e, "start_time", "wall_time")) is not None]
    return Clock(min(event_pts, default=None), min(walls + event_walls, default=None))


def _interval(times: list[float]) -> float | None:
    """The typical time between frames (median, so a gap does not skew it)."""
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(steps) if steps else None


def _is_box(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 4 and all(is_number(v) for v in value)
