"""Track-event stage: the ``new``, ``update`` and ``end`` events of every track, raised after the
stages that fill in the track book (best views, classifications), so each event tells all of it."""

from __future__ import annotations

from streamproc.analysis.events import track_event
from streamproc.analysis.tracking import Track
from streamproc.core.events import EndReason, Event, Moment, TrackEvent, TrackEventType
from streamproc.core.frames import Detections, Frame
from streamproc.stages.base import Stage, StageOutput
from streamproc.stages.tracks import SourceTracks, TrackBook


class TrackEventStage(Stage):
    """Raises each confirmed track's events: exactly one ``end`` per ``new``, and at most one
    ``update`` per ``update_interval_s`` when something worth telling changed."""

    name = "track-events"

    def __init__(self, book: TrackBook) -> None:
        self.book = book

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        source = None if frame.stream.still else self.book.get(frame.source_id)
        if source is None or source.last_at is None:
            return detections, ()
        at, step = source.last_at, source.step
        events: list[Event] = [self._event("end", track, source, at, "lost") for track in step.ended]
        events += [self._event("new", track, source, at) for track in step.confirmed]
        events += self._updates(source, at)
        return detections, tuple(events)

    def finish(self, source_id: str, reason: EndReason) -> list[Event]:
        """End every open track of the source."""
        source = self.book.get(source_id)
        if source is None or source.last_at is None:
            return []
        at = source.last_at
        return [self._event("end", track, source, at, reason) for track in source.tracker.end_all()]

    def _updates(self, source: SourceTracks, at: Moment) -> list[Event]:
        interval = self.book.settings.update_interval_s
        events: list[Event] = []
        for track in source.tracker.confirmed:
            state = source.tracks[track.key]
            if state.pending and state.last_event and at.seconds_since(state.last_event) >= interval:
                events.append(self._event("update", track, source, at))
        return events

    def _event(
        self,
        kind: TrackEventType,
        track: Track,
        source: SourceTracks,
        at: Moment,
        reason: EndReason | None = None,
    ) -> TrackEvent:
        state = source.tracks.pop(track.key) if kind == "end" else source.tracks[track.key]
        view, state.view = state.view, None
        event = track_event(
            kind,
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
