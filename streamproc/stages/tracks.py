"""Track stage: faces become tracks with stable ids; tracks raise ``new``, ``update`` and ``end``
events. Optionally it keeps each track's best view (for the snapshot sink) and classifies faces
(see :mod:`streamproc.stages.faces`); both need full-resolution pixels, only then."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamproc.analysis.events import BestView, EndReason, Event, RunIds, Snapshot, TrackEvent, track_event
from streamproc.analysis.snapshots import snapshot_paths, snapshot_picture
from streamproc.analysis.tracking import Moment, Track, Tracker, TrackStep
from streamproc.config.settings import SnapshotSettings, TrackingSettings
from streamproc.core.frames import Classification, Detections, Frame
from streamproc.media.crops import square_crop
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan
from streamproc.stages.base import Stage, StageOutput
from streamproc.stages.faces import FaceClassification, TrackClassState


@dataclass
class _TrackState:
    """What the events of one confirmed track need beyond the tracker's geometry."""

    seq: int = 0
    last_event: Moment | None = None
    pending: set[str] = field(default_factory=set)
    classes: TrackClassState = field(default_factory=TrackClassState)
    view: BestView | None = None  # best view not yet handed to the snapshot sink
    snapshot: Snapshot | None = None


@dataclass
class _Source:
    source_id: str
    tracker: Tracker
    size: tuple[int, int]
    tracks: dict[int, _TrackState] = field(default_factory=dict)
    last_at: Moment | None = None


class TrackStage(Stage):
    """Tracks faces per source and raises track events."""

    name = "tracks"

    def __init__(
        self,
        settings: TrackingSettings,
        ids: RunIds,
        classification: FaceClassification | None = None,
        snapshots: SnapshotSettings | None = None,
    ) -> None:
        self.settings = settings
        self.ids = ids
        self._classification = classification
        self._snapshots = snapshots
        self._sources: dict[str, _Source] = {}
        self._bgr: BgrReader | None = None

    def pixel_needs(self) -> frozenset[PixelFormat]:
        crops = self._classification is not None or self._snapshots is not None
        return frozenset({PixelFormat.BGR}) if crops else frozenset()

    def open(self, pixels: PixelPlan) -> None:
        if self.pixel_needs():
            self._bgr = pixels.bgr(self)

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        if frame.stream.still:  # a photo: no track to confirm, every face is classified
            return self._classify_still(frame, detections), ()
        source = self._source(frame)
        at = Moment(frame.index, frame.pts, frame.wall_time)
        source.last_at, source.size = at, (frame.width, frame.height)  # a camera may change size
        step = source.tracker.update(at, detections, frame.width, frame.height)
        for track in step.confirmed:
            source.tracks[track.key] = _TrackState()
        for track in step.better_view:
            source.tracks[track.key].pending.add("best")
        self._keep_views(frame, source, step.confirmed + step.better_view)
        classified = self._classify(frame, source, step)
        events: list[Event] = [self._event("end", track, source, at, "lost") for track in step.ended]
        events += [self._event("new", track, source, at) for track in step.confirmed]
        events += self._updates(source, at)
        track_ids = tuple(track.track_id if track else None for track in step.assigned)
        if not classified:
            return detections.with_columns(track_ids=track_ids), tuple(events)
        column = np.array([classified.get(t.key) if t else None for t in step.assigned], dtype=object)
        return detections.with_columns(track_ids=track_ids, classification=column), tuple(events)

    def finish(self, source_id: str, reason: EndReason) -> list[Event]:
        """End every open track of the source (exactly one ``end`` per ``new``)."""
        source = self._sources.get(source_id)
        if source is None or source.last_at is None:
            return []
        at = source.last_at
        return [self._event("end", track, source, at, reason) for track in source.tracker.end_all()]

    def _source(self, frame: Frame) -> _Source:
        source = self._sources.get(frame.source_id)
        if source is None:
            tracker = Tracker(self.settings, self.ids.track_id)
            source = self._sources[frame.source_id] = _Source(
                frame.source_id, tracker, (frame.width, frame.height)
            )
        return source

    def _keep_views(self, frame: Frame, source: _Source, tracks: list[Track]) -> None:
        """Keep the crop of each new best view: the frame is gone by the time its event is raised."""
        if self._snapshots is None or not tracks:
            return
        assert self._bgr is not None, "open() first"
        bgr = self._bgr(frame)
        for track in tracks:
            crop = snapshot_picture(bgr, track.last.box, self._snapshots)
            whole = bgr if self._snapshots.full_frame else None
            source.tracks[track.key].view = BestView(crop, whole, track.last.box.copy())

    def _classify(self, frame: Frame, source: _Source, step: TrackStep) -> dict[int, Classification]:
        """Classify the faces due on this frame (one classifier call); returns them by track key."""
        classification = self._classification
        if classification is None:
            return {}
        states = {key: state.classes for key, state in source.tracks.items()}
        tracks = source.tracker.confirmed
        due = classification.due(frame.index, states, tracks, step.confirmed, step.better_view)
        if not due:
            return {}
        results = self._classify_faces(frame, [track.last.box for track in due])
        for track, result in zip(due, results, strict=True):
            state = source.tracks[track.key]
            state.classes.classification = result
            if state.classes.label_changed:
                state.pending.add("classification")
        return {track.key: result for track, result in zip(due, results, strict=True)}

    def _classify_still(self, frame: Frame, detections: Detections) -> Detections:
        classification = self._classification
        if classification is None or not len(detections):
            return detections
        column = np.empty(len(detections), dtype=object)
        column[:] = self._classify_faces(frame, list(detections.boxes))
        return detections.with_columns(classification=column)

    def _classify_faces(self, frame: Frame, boxes: list[np.ndarray]) -> list[Classification]:
        """The faces in these boxes, cropped square with the classifier's margin, in one call."""
        assert self._classification is not None and self._bgr is not None, "open() first"
        bgr = self._bgr(frame)
        margin = self._classification.margin
        return self._classification.runner.classify(
            [square_crop(bgr, box, margin) for box in boxes], frame.index
        )

    def _updates(self, source: _Source, at: Moment) -> list[Event]:
        interval = self.settings.update_interval_s
        events: list[Event] = []
        for track in source.tracker.confirmed:
            state = source.tracks[track.key]
            if state.pending and state.last_event and at.seconds_since(state.last_event) >= interval:
                events.append(self._event("update", track, source, at))
        return events

    def _event(
        self, kind: str, track: Track, source: _Source, at: Moment, reason: EndReason | None = None
    ) -> TrackEvent:
        state = source.tracks.pop(track.key) if kind == "end" else source.tracks[track.key]
        view, state.view = state.view, None
        if view is not None and self._snapshots is not None and track.track_id is not None:
            state.snapshot = snapshot_paths(self._snapshots, source.source_id, track.track_id)
        event = track_event(
            kind,  # type: ignore[arg-type]
            track,
            state.seq,
            source.source_id,
            at,
            source.size,
            classification=state.classes.classification,
            snapshot=state.snapshot,
            view=view,
            changes=tuple(sorted(state.pending)) if kind != "new" else (),
            end_reason=reason,
        )
        state.seq += 1
        state.last_event = at
        state.pending.clear()
        if state.classes.classification is not None:
            state.classes.reported_label = state.classes.classification.top.index
        return event
