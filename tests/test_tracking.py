"""The tracker on hand-made detections: confirmation, short misses, ends, weak faces, crossings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from streamproc.analysis.tracking import Tracker
from streamproc.config.settings import TrackingSettings
from streamproc.core.events import Moment
from streamproc.core.frames import Detections
from streamproc.core.geometry import box_iou, inside_fraction

WIDTH, HEIGHT = 640, 360


def faces(*boxes_scores: tuple[tuple[float, float, float, float], float]) -> Detections:
    boxes = np.array([box for box, _ in boxes_scores], np.float32).reshape(-1, 4)
    scores = np.array([score for _, score in boxes_scores], np.float32)
    keypoints = np.repeat(((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None, :], 6, axis=1)
    return Detections(boxes, scores, keypoints)


def make_tracker(**overrides: object) -> Tracker:
    counter = itertools.count(1)
    return Tracker(TrackingSettings(**overrides), lambda: f"t{next(counter)}")


def at(frame: int, fps: float = 25.0) -> Moment:
    return Moment(frame, frame / fps, 1000.0 + frame / fps)


def box_at(x: float, y: float = 100.0, size: float = 80.0) -> tuple[float, float, float, float]:
    return (x, y, x + size, y + size)


def test_track_confirmed_after_min_hits_and_keeps_its_id() -> None:
    tracker = make_tracker(min_hits=3)
    confirmed_at = []
    ids = []
    for frame in range(10):
        step = tracker.update(at(frame), faces((box_at(100 + 5 * frame), 0.9)), WIDTH, HEIGHT)
        confirmed_at += [frame for _ in step.confirmed]
        ids.append(step.assigned[0].track_id)
    assert confirmed_at == [2]
    assert ids[:2] == [None, None]
    assert set(ids[2:]) == {"t1"}


def test_one_frame_false_positive_never_becomes_a_track() -> None:
    tracker = make_tracker(min_hits=2)
    tracker.update(at(0), faces((box_at(300), 0.95)), WIDTH, HEIGHT)
    for frame in range(1, 30):
        step = tracker.update(at(frame), faces(), WIDTH, HEIGHT)
        assert not step.confirmed and not step.ended
    assert tracker.confirmed == []


def test_short_miss_survives_long_miss_ends() -> None:
    tracker = make_tracker(min_hits=1, max_missed=5)
    step = tracker.update(at(0), faces((box_at(100), 0.9)), WIDTH, HEIGHT)
    track = step.confirmed[0]
    for frame in range(1, 5):  # four frames without the face, then it is back where motion put it
        assert not tracker.update(at(frame), faces(), WIDTH, HEIGHT).ended
    step = tracker.update(at(5), faces((box_at(100), 0.9)), WIDTH, HEIGHT)
    assert step.assigned[0] is track and not step.confirmed
    ended_at = [f for f in range(6, 20) if tracker.update(at(f), faces(), WIDTH, HEIGHT).ended]
    assert ended_at[0] == 11  # unseen for more than max_missed = 5 frames after frame 5


def test_max_missed_seconds_ends_earlier_than_frames() -> None:
    tracker = make_tracker(min_hits=1, max_missed=1000, max_missed_s=0.2)
    tracker.update(at(0), faces((box_at(100), 0.9)), WIDTH, HEIGHT)
    ended_at = [f for f in range(1, 20) if tracker.update(at(f), faces(), WIDTH, HEIGHT).ended]
    assert ended_at[0] == 6  # 6 / 25 s = 0.24 s > 0.2 s


def test_weak_face_extends_a_track_but_never_starts_one() -> None:
    tracker = make_tracker(min_hits=1, high_score=0.7)
    step = tracker.update(at(0), faces((box_at(100), 0.9), (box_at(400), 0.55)), WIDTH, HEIGHT)
    assert [t.track_id for t in step.confirmed] == ["t1"]
    assert step.assigned[1] is None  # the weak face alone starts nothing
    step = tracker.update(at(1), faces((box_at(104), 0.55)), WIDTH, HEIGHT)
    assert step.assigned[0] is not None and step.assigned[0].track_id == "t1"


def test_crossing_faces_keep_their_ids_thanks_to_motion() -> None:
    tracker = make_tracker(min_hits=1, iou_threshold=0.2)
    seen: dict[str, set[str]] = {"left_to_right": set(), "right_to_left": set()}
    for frame in range(40):
        a = box_at(100 + 10 * frame, y=100)
        b = box_at(490 - 10 * frame, y=120)  # overlaps a around frame 19
        step = tracker.update(at(frame), faces((a, 0.9), (b, 0.9)), WIDTH, HEIGHT)
        seen["left_to_right"].add(step.assigned[0].track_id)
        seen["right_to_left"].add(step.assigned[1].track_id)
    assert seen == {"left_to_right": {"t1"}, "right_to_left": {"t2"}}


def test_better_view_needs_a_real_gain() -> None:
    tracker = make_tracker(min_hits=1, better_view_gain=0.05)
    tracker.update(at(0), faces((box_at(-40), 0.9)), WIDTH, HEIGHT)  # half out of the frame
    track = tracker.confirmed[0]
    assert track.best is not None and track.best.quality == pytest.approx(0.9 * 0.5)
    step = tracker.update(at(1), faces((box_at(-38), 0.9)), WIDTH, HEIGHT)
    assert step.better_view == []  # 0.9 * 0.525: too small a gain
    step = tracker.update(at(2), faces((box_at(10), 0.9)), WIDTH, HEIGHT)
    assert step.better_view == [track] and track.best.at.frame == 2


def test_end_all_ends_confirmed_tracks_only() -> None:
    tracker = make_tracker(min_hits=2)
    tracker.update(at(0), faces((box_at(100), 0.9), (box_at(400), 0.9)), WIDTH, HEIGHT)
    tracker.update(at(1), faces((box_at(100), 0.9)), WIDTH, HEIGHT)
    tracker.update(at(2), faces((box_at(100), 0.9), (box_at(400), 0.9)), WIDTH, HEIGHT)
    ended = tracker.end_all()
    assert [t.track_id for t in ended] == ["t1"]
    assert tracker.confirmed == []


def test_geometry_helpers() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0]])
    assert inside_fraction(np.array([-5, 0, 5, 10]), 100, 100) == pytest.approx(0.5)
    assert inside_fraction(np.array([0, 0, 0, 10]), 100, 100) == 0.0
