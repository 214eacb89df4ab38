"""Track stage: faces become tracks with stable ids, written into a :class:`TrackBook` that the
stages after it read: best views (:mod:`streamproc.stages.best_views`), face classification
(:mod:`streamproc.stages.faces`) and, last of them, the track events
(:mod:`streamproc.stages.track_events`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamproc.analysis.events import RunIds
from streamproc.analysis.tracking import Tracker, TrackStep
from streamproc.config.settings import TrackingSettings
from streamproc.core.classification import Classification
from streamproc.core.events import BestView, Moment, Snapshot
from streamproc.core.frames import Detections, Frame
from streamproc.stages.base import Stage, StageOutput


class TrackClassState:
    """What face classification keeps per confirmed track."""

    __slots__ = ("better_unclassified", "classification", "classified_frame", "reported_label")

    def __init__(self) -> None:
        self.classification: Classification | None = None
        self.reported_label: int | None = None  # the top label the last event told
        self.classified_frame: int | None = None
        self.better_unclassified = False  # a better view came while classifying was rate-limited

    @property
    def label_changed(self) -> bool:
        current, told = self.classification, self.reported_label
        return current is not None and told is not None and current.top.index != told


@dataclass
class TrackState:
    """What the stages after the tracker keep for one confirmed track."""

    seq: int = 0  # of its next event
    last_event: Moment | None = None
    pending: set[str] = field(default_factory=set)  # changes its next update tells
    classes: TrackClassState = field(default_factory=TrackClassState)
    view: BestView | None = None  # best view not yet handed to the snapshot sink
    snapshot: Snapshot | None = None


@dataclass
class SourceTracks:
    """One source's tracker, its confirmed tracks' states and the step of its latest frame."""

    source_id: str
    tracker: Tracker
    size: tuple[int, int]
    step: TrackStep = field(default_factory=lambda: TrackStep([]))
    tracks: dict[int, TrackState] = field(default_factory=dict)  # by track key
    last_at: Moment | None = None


class TrackBook:
    """The tracks of every source, shared by the track stages: the track stage writes each frame's
    step, the stages after it read it (they run on the same inference thread, in order)."""

    def __init__(self, settings: TrackingSettings, ids: RunIds) -> None:
        self.settings = settings
        self.ids = ids
        self._sources: dict[str, SourceTracks] = {}

    def source(self, frame: Frame) -> SourceTracks:
        found = self._sources.get(frame.source_id)
        if found is None:
            tracker = Tracker(self.settings, self.ids.track_id)
            found = SourceTracks(frame.source_id, tracker, (frame.width, frame.height))
            self._sources[frame.source_id] = found
        return found

    def get(self, source_id: str) -> SourceTracks | None:
        return self._sources.get(source_id)


class TrackStage(Stage):
    """Tracks faces per source: the ``track_ids`` column, and the step the later track stages read."""

    name = "tracks"

    def __init__(self, book: TrackBook) -> None:
        self.book = book

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        if frame.stream.still:  # a photo: no track to confirm
            return detections, ()
        source = self.book.source(frame)
        at = Moment(frame.index, frame.pts, frame.wall_time)
        source.last_at, source.size = at, (frame.width, frame.height)  # a camera may change size
        source.step = step = source.tracker.update(at, detections, frame.width, frame.height)
        for track in step.confirmed:
            source.tracks[track.key] = TrackState()
        for track in step.better_view:
            source.tracks[track.key].pending.add("best")
        track_ids = tuple(track.track_id if track else None for track in step.assigned)
        return detections.with_columns(track_ids=track_ids), ()
