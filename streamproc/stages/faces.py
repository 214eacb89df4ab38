"""Face classification stage: classifies tracked faces (newly confirmed, a better view, or
periodic, with a minimum gap between two classifications of one track) and every face of a photo."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from streamproc.analysis.tracking import Track
from streamproc.config.settings import FaceClassifySettings
from streamproc.core.classification import Classification
from streamproc.core.frames import Detections, Frame
from streamproc.media.crops import square_crop
from streamproc.stages.base import BgrStage, StageOutput
from streamproc.stages.classify import ClassifierRunner
from streamproc.stages.tracks import SourceTracks, TrackBook, TrackClassState


class FaceClassification:
    """Schedules face crops for the classifier."""

    def __init__(self, rules: FaceClassifySettings, margin: float, runner: ClassifierRunner) -> None:
        self.rules = rules
        self.margin = margin
        self.runner = runner

    def due(
        self,
        index: int,
        states: Mapping[int, TrackClassState],
        tracks: Iterable[Track],
        confirmed: list[Track],
        better: list[Track],
    ) -> list[Track]:
        """Tracks to classify on frame ``index`` (``tracks``: every confirmed track of the source)."""
        due = list(confirmed)
        if self.rules.on_better_view:
            for track in better:
                states[track.key].better_unclassified = True
        for track in tracks:
            state = states[track.key]
            if track in due or track.last.at.frame != index or state.classified_frame is None:
                continue
            since = index - state.classified_frame
            if since < self.rules.min_gap_frames:
                continue
            periodic = self.rules.every_n_frames and since >= self.rules.every_n_frames
            if state.better_unclassified or periodic:
                due.append(track)
        for track in due:
            state = states[track.key]
            state.classified_frame, state.better_unclassified = index, False
        return due


class FaceClassStage(BgrStage):
    """Adds the ``classification`` column for the faces classified on a frame; a tracked face's
    latest classification goes into the track book, for its events."""

    name = "face-classes"

    def __init__(self, book: TrackBook, classification: FaceClassification) -> None:
        self.book = book
        self._classification = classification

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        if frame.stream.still:  # a photo: every face is classified
            return self._classify_still(frame, detections), ()
        source = self.book.get(frame.source_id)
        assert source is not None, "the track stage runs first"
        classified = self._classify(frame, source)
        if not classified:
            return detections, ()
        column = np.array([classified.get(t.key) if t else None for t in source.step.assigned], dtype=object)
        return detections.with_columns(classification=column), ()

    def _classify(self, frame: Frame, source: SourceTracks) -> dict[int, Classification]:
        """Classify the faces due on this frame (one classifier call); returns them by track key."""
        states = {key: state.classes for key, state in source.tracks.items()}
        step = source.step
        due = self._classification.due(
            frame.index, states, source.tracker.confirmed, step.confirmed, step.better_view
        )
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
        if not len(detections):
            return detections
        column = np.empty(len(detections), dtype=object)
        column[:] = self._classify_faces(frame, list(detections.boxes))
        return detections.with_columns(classification=column)

    def _classify_faces(self, frame: Frame, boxes: list[np.ndarray]) -> list[Classification]:
        """The faces in these boxes, cropped square with the classifier's margin, in one call."""
        bgr = self.bgr(frame)
        margin = self._classification.margin
        return self._classification.runner.classify(
            [square_crop(bgr, box, margin) for box in boxes], frame.index
        )
