"""The redaction stage: which regions of each frame a redacting sink covers.

Recall comes first. The detector runs at redaction's own threshold (``redact.min_score``, lower
than the detector's); every face found there is covered from the first frame it is seen, its
whole head with it. Faces are also tracked, each from its first sighting (no confirmation wait),
and a track the detector misses on a frame stays covered at its predicted place for up to
``tracking.max_missed`` frames: a face turning away, blurred by motion or half out of the picture
for a frame or two is still hidden. A face seen for the first time is covered on the frames before
too (``redact.lookback`` of them, held back by the redacting sinks) where it came in: over the
picture's edge it is near, while it was too cut off to be found. The faces handed on to later
stages and sinks are only those at the detector's own threshold, so events and records are those
of a run without redaction.
"""

from __future__ import annotations

import itertools

import numpy as np

from streamproc.analysis.tracking import Tracker
from streamproc.config.settings import RedactSettings, TrackingSettings
from streamproc.core.events import EndReason, Event, Moment
from streamproc.core.frames import Detections, Frame
from streamproc.privacy.cover import Region
from streamproc.privacy.regions import entry_region, head_regions
from streamproc.stages.base import Stage, StageOutput

# Faces are matched to tracks on boxes this many times their size: a face that moves by most of its
# width between two frames (a fast pan) still overlaps its track's box, and stays one track.
ASSOCIATION_SCALE = 2.0


class RedactionStage(Stage):
    """Adds ``cover`` (head regions to hide) to each frame's detections; see the module docstring."""

    name = "redaction"

    def __init__(self, settings: RedactSettings, tracking: TrackingSettings, keep_score: float) -> None:
        self.settings = settings
        self.keep_score = keep_score  # faces below it are covered, not reported
        # every face starts a track at once, weak ones included: a track only ever widens the cover
        self._tracking = tracking.model_copy(update={"min_hits": 1, "high_score": settings.min_score})
        self._trackers: dict[str, Tracker] = {}
        self._ids = itertools.count()

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        found = detections[detections.scores >= self.settings.min_score]
        kept = detections[detections.scores >= self.keep_score]
        size, margin = (frame.width, frame.height), self.settings.margin
        if frame.stream.still:  # a photo has no neighbours to track over
            return kept.with_cover(_array(head_regions(found.boxes, margin, *size))), ()
        missed, new = self._track(frame, found)
        cover = head_regions(np.concatenate([found.boxes, missed]), margin, *size)
        back = [entry_region(box, margin, *size) for box in new] if self.settings.lookback else []
        return kept.with_cover(_array(cover), _array([r for r in back if r is not None])), ()

    def _track(self, frame: Frame, found: Detections) -> tuple[np.ndarray, list[np.ndarray]]:
        """Predicted boxes of the source's tracks that no face of this frame extended, and the boxes
        of the faces seen for the first time."""
        tracker = self._trackers.get(frame.source_id)
        if tracker is None:
            tracker = Tracker(self._tracking, lambda: str(next(self._ids)))
            self._trackers[frame.source_id] = tracker
        at = Moment(frame.index, frame.pts, frame.wall_time)
        grown = Detections(_scaled(found.boxes, ASSOCIATION_SCALE), found.scores, found.keypoints)
        step = tracker.update(at, grown, frame.width, frame.height)
        unseen = [track for track in tracker.confirmed if track.last.at.frame != frame.index]
        missed = _face_sized([track.predict(frame.index) for track in unseen])
        return missed, list(_face_sized([track.last.box for track in step.confirmed]))

    def finish(self, source_id: str, reason: EndReason) -> list[Event]:
        self._trackers.pop(source_id, None)
        return []


def _array(regions: list[Region]) -> np.ndarray:
    return np.array(regions, np.float32).reshape(-1, 4)


def _scaled(boxes: np.ndarray, factor: float) -> np.ndarray:
    """(n, 4) boxes scaled by ``factor`` about their centres."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    halves = (boxes[:, 2:] - boxes[:, :2]) * (factor / 2)
    return np.concatenate([centres - halves, centres + halves], axis=1).astype(np.float32)


def _face_sized(boxes: list[np.ndarray]) -> np.ndarray:
    """Tracked boxes back at the faces' size."""
    return _scaled(np.array(boxes, np.float32).reshape(-1, 4), 1 / ASSOCIATION_SCALE)
