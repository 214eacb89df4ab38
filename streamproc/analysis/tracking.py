"""Face tracking: per-frame detections become tracks with stable ids.

ByteTrack-style association on IoU against constant-velocity predictions:

1. confirmed tracks take the strong faces (score >= ``high_score``), best overlap first;
2. confirmed tracks still unmatched take the weak faces (a face turning away or half out of frame
   scores lower but is still the same face);
3. tentative tracks take the strong faces left; a tentative track that misses a frame is dropped;
4. strong faces left start tentative tracks. A track is confirmed after ``min_hits`` frames in a row
   and ends once unseen for more than ``max_missed`` frames (or ``max_missed_s`` seconds).

The tracker is pure bookkeeping (no pictures, no I/O); :mod:`streamproc.stages.tracks` runs it and
shares its steps with the stages that keep best views, classify faces and raise the events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from streamproc.config.settings import TrackingSettings
from streamproc.core.events import Moment, Observation
from streamproc.core.frames import Detections
from streamproc.core.geometry import box_iou, inside_fraction

_VELOCITY_SMOOTHING = 0.5  # weight of the newest motion in the velocity estimate


@dataclass(eq=False)
class Track:
    key: int  # internal, unique per tracker
    first: Observation
    last: Observation
    track_id: str | None = None  # public id, given when the track is confirmed
    hits: int = 1
    top_score: float = 0.0
    best: Observation | None = None  # best view since confirmation (the snapshot's view)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None

    def predict(self, frame: int) -> np.ndarray:
        return self.last.box + self.velocity * float(frame - self.last.at.frame)

    def observe(self, seen: Observation) -> None:
        frames = max(1, seen.at.frame - self.last.at.frame)
        motion = (seen.box - self.last.box) / np.float32(frames)
        weight = _VELOCITY_SMOOTHING if self.hits > 1 else 1.0
        self.velocity = (weight * motion + (1.0 - weight) * self.velocity).astype(np.float32)
        self.last = seen
        self.hits += 1
        self.top_score = max(self.top_score, seen.score)


@dataclass
class TrackStep:
    """What one frame did to the tracks."""

    assigned: list[Track | None]  # per detection: the track it belongs to (tentative ones included)
    confirmed: list[Track] = field(default_factory=list)  # confirmed on this frame
    better_view: list[Track] = field(default_factory=list)  # best view improved (not on confirmation)
    ended: list[Track] = field(default_factory=list)  # unseen too long


def _greedy_pairs(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs, highest IoU first, each row and column used once."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    order = np.argsort(-iou, axis=None, kind="stable")
    rows_used: set[int] = set()
    cols_used: set[int] = set()
    for flat in order:
        row, col = divmod(int(flat), iou.shape[1])
        if iou[row, col] < threshold:
            break
        if row in rows_used or col in cols_used:
            continue
        pairs.append((row, col))
        rows_used.add(row)
        cols_used.add(col)
    return pairs


class Tracker:
    """Tracks the faces of one source. Call :meth:`update` once per processed frame, in order."""

    def __init__(self, settings: TrackingSettings, new_id: Callable[[], str]) -> None:
        self.settings = settings
        self._new_id = new_id
        self._tracks: list[Track] = []
        self._next_key = 0

    @property
    def confirmed(self) -> list[Track]:
        return [track for track in self._tracks if track.confirmed]

    def update(self, at: Moment, detections: Detections, width: int, height: int) -> TrackStep:
        settings = self.settings
        seen = [
            Observation(
                at,
                detections.boxes[i].astype(np.float32),
                float(detections.scores[i]),
                detections.keypoints[i].astype(np.float32),
                float(detections.scores[i]) * inside_fraction(detections.boxes[i], width, height),
            )
            for i in range(len(detections))
        ]
        step = TrackStep(assigned=[None] * len(seen))
        strong = [i for i, face in enumerate(seen) if face.score >= settings.high_score]
        weak = [i for i, face in enumerate(seen) if face.score < settings.high_score]
        confirmed = self.confirmed
        tentative = [track for track in self._tracks if not track.confirmed]

        left = self._match(confirmed, strong, seen, step)
        self._match(left, weak, seen, step)
        unmatched_strong = [i for i in strong if step.assigned[i] is None]
        lost_tentative = self._match(tentative, unmatched_strong, seen, step)
        for track in lost_tentative:
            self._tracks.remove(track)
        for i in unmatched_strong:
            if step.assigned[i] is None:
                track = Track(self._next_key, seen[i], seen[i], top_score=seen[i].score)
                self._next_key += 1
                self._tracks.append(track)
                step.assigned[i] = track

        matched = {id(track) for track in step.assigned if track is not None}
        for track in list(self._tracks):
            if id(track) not in matched:
                if self._expired(track, at):
                    self._tracks.remove(track)
                    step.ended.append(track)
                continue
            if not track.confirmed and track.hits >= settings.min_hits:
                track.track_id = self._new_id()
                track.best = track.last
                step.confirmed.append(track)
            elif self._better_view(track):
                track.best = track.last
                step.better_view.append(track)
        return step

    def end_all(self) -> list[Track]:
        """The source is over: every confirmed track ends; tentative ones are forgotten."""
        ended = self.confirmed
        self._tracks.clear()
        return ended

    def _match(
        self, tracks: list[Track], indices: list[int], seen: list[Observation], step: TrackStep
    ) -> list[Track]:
        """Pair tracks with the faces at ``indices``; returns the tracks left unmatched."""
        if not tracks or not indices:
            return list(tracks)
        frame = seen[indices[0]].at.frame
        predicted = np.stack([track.predict(frame) for track in tracks])
        iou = box_iou(predicted, np.stack([seen[i].box for i in indices]))
        used: set[int] = set()
        for row, col in _greedy_pairs(iou, self.settings.iou_threshold):
            tracks[row].observe(seen[indices[col]])
            step.assigned[indices[col]] = tracks[row]
            used.add(row)
        return [track for row, track in enumerate(tracks) if row not in used]

    def _better_view(self, track: Track) -> bool:
        best = track.best
        if not track.confirmed or best is None or track.last is best:
            return False
        return track.last.quality >= best.quality + self.settings.better_view_gain

    def _expired(self, track: Track, at: Moment) -> bool:
        """A missed frame drops a tentative track; a confirmed one survives short gaps."""
        if not track.confirmed:
            return False  # tentative tracks that miss were removed in update()
        missed = at.frame - track.last.at.frame
        if missed > self.settings.max_missed:
            return True
        limit = self.settings.max_missed_s
        return limit is not None and at.seconds_since(track.last.at) > limit
