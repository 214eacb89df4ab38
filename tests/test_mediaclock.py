"""Media times of a live connection: the first frame without a timestamp, decoder reordering glitches,
frames without times mid-stream (the patterns FFmpeg shows on GStreamer's RTSP streams)."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest

from streamproc.capture.mediaclock import MediaClock

TB = Fraction(1, 90_000)


def _timed(pattern: list[int | None], duration: int | None = 3600) -> tuple[list[str], list[float], int]:
    clock: MediaClock[str] = MediaClock(TB, fps=25.0)
    names, times = [], []
    for index, pts in enumerate(pattern):
        for name, seconds in clock.place(f"f{index}", pts, duration):
            names.append(name)
            times.append(seconds)
    return names, times, clock.repaired


def test_the_first_frame_without_a_time_is_placed_one_frame_before_the_next() -> None:
    # what FFmpeg gives for the first frames of an RTSP session: the keyframe has no pts
    names, times, repaired = _timed([None, 3600, 7200, 10800])
    assert names == ["f0", "f1", "f2", "f3"], "nothing lost, order kept"
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.12])
    assert repaired == 1


def test_times_that_go_back_are_moved_after_their_predecessor() -> None:
    # a reordering glitch seen on a live GStreamer mount: 129633 comes out before 14400
    names, times, repaired = _timed([None, 3360, 6960, 129633, 14400, 136833, None, 147633])
    assert names == [f"f{i}" for i in range(8)]
    assert all(b > a for a, b in pairwise(times)), times
    assert times[4] == pytest.approx(129633 / 90_000 + 0.04), "one frame after the jump"
    assert times[6] == pytest.approx(136833 / 90_000 + 0.04), "a frame without time mid-stream"
    assert repaired == 3


def test_without_durations_the_frame_rate_spaces_frames() -> None:
    _, times, _ = _timed([None, None, 9000], duration=None)
    assert times == pytest.approx([0.02, 0.06, 0.1])
