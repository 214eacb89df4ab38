"""Best-view stage: keeps the crop of each track's new best view for the snapshot sink (the frame
is gone by the time the track's next event is raised) and names the files it will be written to."""

from __future__ import annotations

from streamproc.analysis.snapshots import snapshot_paths, snapshot_picture
from streamproc.config.settings import SnapshotSettings
from streamproc.core.events import BestView
from streamproc.core.frames import Detections, Frame
from streamproc.stages.base import BgrStage, StageOutput
from streamproc.stages.tracks import TrackBook


class BestViewStage(BgrStage):
    """A view of every track confirmed or seen better on a frame, into the track book."""

    name = "best-views"

    def __init__(self, book: TrackBook, settings: SnapshotSettings) -> None:
        self.book = book
        self.settings = settings

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        source = None if frame.stream.still else self.book.get(frame.source_id)
        tracks = source.step.confirmed + source.step.better_view if source else []
        if source is None or not tracks:
            return detections, ()
        bgr = self.bgr(frame)
        for track in tracks:
            assert track.track_id is not None, "confirmed tracks have ids"
            state = source.tracks[track.key]
            crop = snapshot_picture(bgr, track.last.box, self.settings)
            whole = bgr if self.settings.full_frame else None
            state.view = BestView(crop, whole, track.last.box.copy())
            state.snapshot = snapshot_paths(self.settings, source.source_id, track.track_id)
        return detections, ()
