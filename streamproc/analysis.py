"""The stage after detection: tracks, best views (snapshots), classification and events.

Runs in the inference thread, once per processed frame. Work is scheduled, not done per frame:
a face is cropped only when its track is confirmed, gets a better view or is due for its periodic
classification, and all pictures classified on one frame go to the classifier in one call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamproc.config import Settings
from streamproc.errors import ConfigError, OutputError
from streamproc.events import (
    EndReason,
    Event,
    RunIds,
    SceneEvent,
    Snapshot,
    TrackEvent,
    run_ids_for,
    track_event,
)
from streamproc.frames import Detections, Frame
from streamproc.inference.classifier import Classification, Classifier, open_classifier, resize_area
from streamproc.inference.models import ModelRegistry
from streamproc.scene import KeyframeTrigger
from streamproc.snapshots import SnapshotWriter, square_crop
from streamproc.tracking import Moment, Track, Tracker

log = logging.getLogger(__name__)

InferenceTimer = Callable[[str, float], None]


@dataclass
class _TrackState:
    """What the events of one confirmed track need beyond the tracker's geometry."""

    seq: int = 0
    last_event: Moment | None = None
    pending: set[str] = field(default_factory=set)
    classification: Classification | None = None
    reported_label: int | None = None
    classified_frame: int | None = None
    better_unclassified: bool = False  # a better view came while classifying was rate-limited
    crop: np.ndarray | None = None  # best view, not yet written
    frame_bgr: np.ndarray | None = None
    snapshot: Snapshot | None = None


@dataclass
class _Source:
    source_id: str
    tracker: Tracker | None
    keyframes: KeyframeTrigger | None
    size: tuple[int, int]
    tracks: dict[int, _TrackState] = field(default_factory=dict)
    last_at: Moment | None = None


class Analysis:
    """Tracks faces per source and raises events; classifies faces and key frames when asked to."""

    def __init__(
        self,
        settings: Settings,
        classifier: Classifier | None = None,
        snapshots: SnapshotWriter | None = None,
        ids: RunIds | None = None,
        on_inference: InferenceTimer | None = None,
    ) -> None:
        tracking, classify = settings.tracking, settings.classifier
        self.classify_faces = classify.enabled and classify.targets in ("faces", "both")
        self.classify_keyframes = classify.enabled and classify.targets in ("keyframes", "both")
        if not tracking.enabled and (self.classify_faces or snapshots is not None):
            raise ConfigError(
                "face classification and snapshots follow face tracks: set tracking.enabled: true, "
                "or classifier.targets: keyframes and snapshots.enabled: false"
            )
        if classify.enabled and classifier is None:
            raise ValueError("classifier.enabled needs a classifier")
        self.settings = settings
        self.ids = ids or RunIds()
        self._classifier = classifier
        self._snapshots = snapshots
        self._on_inference = on_inference
        self._sources: dict[str, _Source] = {}

    @property
    def needs_pictures(self) -> bool:
        """Snapshots and the classifier crop full-resolution pixels; tracking alone does not."""
        return self._snapshots is not None or self._classifier is not None

    def process(self, frame: Frame, detections: Detections) -> tuple[Detections, tuple[Event, ...]]:
        """Track the frame's faces; returns them with track ids (and classifications) and the events."""
        source = self._source(frame)
        at = Moment(frame.index, frame.pts, frame.wall_time)
        source.last_at, source.size = at, (frame.width, frame.height)  # a camera may change size
        step = source.tracker.update(at, detections, frame.width, frame.height) if source.tracker else None
        faces: list[Track] = []
        if step is not None:
            for track in step.confirmed:
                source.tracks[track.key] = _TrackState()
            for track in step.better_view:
                source.tracks[track.key].pending.add("best")
            self._capture_views(frame, source, step.confirmed + step.better_view)
            faces = self._faces_due(frame.index, source, step.confirmed, step.better_view)
        trigger = source.keyframes.check(frame) if source.keyframes else None
        results = self._classify(frame, [track.last.box for track in faces], whole_frame=trigger is not None)
        classified = {track.key: result for track, result in zip(faces, results, strict=False)}
        for key, result in classified.items():
            self._set_classification(source.tracks[key], result)

        events: list[Event] = []
        if step is not None:
            events += [self._track_event("end", track, source, at, "lost") for track in step.ended]
            events += [self._track_event("new", track, source, at) for track in step.confirmed]
            events += self._updates(source, at)
        if trigger is not None:  # the whole frame's result comes after the faces'
            scene = SceneEvent(self.ids.scene_id(), frame.source_id, at, *source.size, trigger, results[-1])
            events.append(scene)
        if step is None:
            return detections, tuple(events)
        return _with_tracks(detections, step.assigned, classified), tuple(events)

    def finish(self, source_id: str, reason: EndReason = "source_ended") -> list[Event]:
        """The source is over: end every open track (exactly one ``end`` per ``new``)."""
        source = self._sources.get(source_id)
        if source is None or source.tracker is None or source.last_at is None:
            return []
        at = source.last_at
        return [self._track_event("end", track, source, at, reason) for track in source.tracker.end_all()]

    def finish_all(self, reason: EndReason) -> list[Event]:
        events: list[Event] = []
        for source_id in list(self._sources):
            events += self.finish(source_id, reason)
        return events

    def _source(self, frame: Frame) -> _Source:
        source = self._sources.get(frame.source_id)
        if source is None:
            tracking = self.settings.tracking
            source = self._sources[frame.source_id] = _Source(
                source_id=frame.source_id,
                tracker=Tracker(tracking, self.ids.track_id) if tracking.enabled else None,
                keyframes=KeyframeTrigger(self.settings.classifier.keyframes)
                if self.classify_keyframes
                else None,
                size=(frame.width, frame.height),
            )
        return source

    def _capture_views(self, frame: Frame, source: _Source, tracks: list[Track]) -> None:
        """Keep the crop of each new best view: the frame is gone by the time the snapshot is due."""
        if self._snapshots is None or not tracks:
            return
        bgr = frame.bgr()
        for track in tracks:
            state = source.tracks[track.key]
            state.crop = self._snapshots.crop(bgr, track.last.box)
            state.frame_bgr = bgr if self._snapshots.settings.full_frame else None

    def _faces_due(
        self, index: int, source: _Source, confirmed: list[Track], better: list[Track]
    ) -> list[Track]:
        """Faces to classify on this frame: newly confirmed, better view, or periodic (rate-limited)."""
        if not self.classify_faces:
            return []
        rules = self.settings.classifier.faces
        due = list(confirmed)
        if rules.on_better_view:
            for track in better:
                source.tracks[track.key].better_unclassified = True
        for track in source.tracker.confirmed if source.tracker else []:
            state = source.tracks[track.key]
            if track in due or track.last.at.frame != index or state.classified_frame is None:
                continue
            since = index - state.classified_frame
            if since < rules.min_gap_frames:
                continue
            if state.better_unclassified or (rules.every_n_frames and since >= rules.every_n_frames):
                due.append(track)
        for track in due:
            state = source.tracks[track.key]
            state.classified_frame, state.better_unclassified = index, False
        return due

    def _classify(self, frame: Frame, boxes: list[np.ndarray], whole_frame: bool) -> list[Classification]:
        """One classifier call for every face crop (and the whole frame) due on this frame."""
        classifier = self._classifier
        if classifier is None or not (boxes or whole_frame):
            return []
        bgr = frame.bgr()
        width, height = classifier.input_size
        margin = self.settings.classifier.faces.margin
        pictures = [square_crop(bgr, box, margin) for box in boxes]
        if whole_frame:
            pictures.append(bgr)
        rgb = [cv2.cvtColor(resize_area(picture, width, height), cv2.COLOR_BGR2RGB) for picture in pictures]
        started = time.perf_counter()
        results = classifier.classify(rgb, frame.index)
        if self._on_inference is not None:
            self._on_inference(classifier.name, (time.perf_counter() - started) * 1000.0)
        return results

    @staticmethod
    def _set_classification(state: _TrackState, result: Classification) -> None:
        state.classification = result
        if state.reported_label is not None and result.top.index != state.reported_label:
            state.pending.add("classification")

    def _updates(self, source: _Source, at: Moment) -> list[Event]:
        interval = self.settings.tracking.update_interval_s
        events: list[Event] = []
        for track in source.tracker.confirmed if source.tracker else []:
            state = source.tracks[track.key]
            if state.pending and state.last_event and at.seconds_since(state.last_event) >= interval:
                events.append(self._track_event("update", track, source, at))
        return events

    def _track_event(
        self, kind: str, track: Track, source: _Source, at: Moment, reason: EndReason | None = None
    ) -> TrackEvent:
        state = source.tracks.pop(track.key) if kind == "end" else source.tracks[track.key]
        self._save_snapshot(source.source_id, track, state)
        changes = tuple(sorted(state.pending)) if kind != "new" else ()
        event = track_event(
            kind,  # type: ignore[arg-type]
            track,
            state.seq,
            source.source_id,
            at,
            source.size,
            classification=state.classification,
            snapshot=state.snapshot,
            changes=changes,
            end_reason=reason,
        )
        state.seq += 1
        state.last_event = at
        state.pending.clear()
        if state.classification is not None:
            state.reported_label = state.classification.top.index
        return event

    def _save_snapshot(self, source_id: str, track: Track, state: _TrackState) -> None:
        """Write the best view if it changed since the last event (files update at event pace)."""
        writer = self._snapshots
        if writer is None or state.crop is None or track.best is None or track.track_id is None:
            return
        try:
            path, frame_path, jpeg = writer.save(
                source_id, track.track_id, state.crop, state.frame_bgr, track.best.box
            )
        except OutputError as exc:
            log.error("%s: snapshots are off for the rest of the run (events continue)", exc)
            self._snapshots = None
            return
        state.snapshot = Snapshot(path, frame_path, jpeg)
        state.crop = state.frame_bgr = None


def build_analysis(settings: Settings, on_inference: InferenceTimer | None = None) -> Analysis | None:
    """The analysis stage the settings ask for (None when tracking and classification are off).

    Loads and checks the classifier and the snapshot folder now: bad models and outputs fail at start-up.
    """
    if not settings.tracking.enabled and not settings.classifier.enabled:
        return None
    classifier = None
    if settings.classifier.enabled:
        classifier = open_classifier(settings.classifier, ModelRegistry.load(settings.models_dir))
    snapshots = SnapshotWriter(settings.snapshots) if settings.snapshots.enabled else None
    if snapshots is not None:
        snapshots.open()
    ids = run_ids_for(settings.sources)  # same files, same event ids: retried tasks repeat them exactly
    analysis = Analysis(settings, classifier, snapshots, ids, on_inference=on_inference)
    if classifier is not None:
        width, height = classifier.input_size
        log.info(
            "classifying %s with %s (%dx%d, %s)",
            settings.classifier.targets,
            classifier.name,
            width,
            height,
            classifier.model.path,
        )
    if snapshots is not None:
        log.info("saving the best view of each face track in %s", settings.snapshots.dir)
    return analysis


def _with_tracks(
    detections: Detections, assigned: list[Track | None], classified: dict[int, Classification]
) -> Detections:
    """The detections plus per-face ``track_id`` (confirmed tracks) and ``classification`` columns."""
    extra = {
        **detections.extra,
        "track_id": np.array([track.track_id if track else None for track in assigned], dtype=object),
    }
    if classified:
        column = [classified.get(track.key) if track else None for track in assigned]
        extra["classification"] = np.array(column, dtype=object)
    return Detections(detections.boxes, detections.scores, detections.keypoints, extra)
