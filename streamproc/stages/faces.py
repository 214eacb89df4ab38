"""Which face tracks to classify on a frame: newly confirmed, a better view, or periodic, with a
minimum gap between two classifications of one track."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streamproc.analysis.tracking import Track
from streamproc.config.settings import FaceClassifySettings
from streamproc.core.frames import Classification
from streamproc.stages.classify import ClassifierRunner


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


class FaceClassification:
    """Schedules face crops for the classifier; the crops themselves come from the track stage."""

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
