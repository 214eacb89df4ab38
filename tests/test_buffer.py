"""Frame buffers: lossless blocking for files, drop-oldest for live, fair hand-off."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np

from streamproc.capture.buffer import BufferPolicy, FrameBuffer, FrameScheduler
from streamproc.core.frames import Frame, StreamInfo
from streamproc.core.pictures import ArrayPicture

PICTURE = ArrayPicture(np.zeros((4, 4, 3), np.uint8))


def make_frame(source_id: str, index: int) -> Frame:
    info = StreamInfo(source_id, source_id, 4, 4, 25.0, Fraction(1, 25))
    return Frame(info, index, index / 25, index, time.time(), PICTURE)


def test_block_policy_is_lossless_and_bounded() -> None:
    scheduler = FrameScheduler()
    buffer = scheduler.add_buffer("a", 3, BufferPolicy.BLOCK)
    high_water = 0

    def produce() -> None:
        nonlocal high_water
        for index in range(200):
            buffer.put(make_frame("a", index))
            high_water = max(high_water, len(buffer))
        buffer.close()

    producer = threading.Thread(target=produce)
    producer.start()
    received = []
    while (frame := scheduler.next_frame(timeout=5)) is not None:
        received.append(frame.index)
        if frame.index % 50 == 0:
            time.sleep(0.01)  # a slow consumer makes the producer wait
    producer.join()
    assert received == list(range(200))
    assert high_water <= 3
    assert buffer.dropped == 0


def test_a_producer_held_by_a_full_buffer_resumes_once_it_is_half_empty() -> None:
    scheduler = FrameScheduler()
    buffer = scheduler.add_buffer("a", 4, BufferPolicy.BLOCK)
    for index in range(4):
        buffer.put(make_frame("a", index))
    producer = threading.Thread(target=buffer.put, args=(make_frame("a", 4),))
    producer.start()
    taken = []
    for expected_alive in (True, False):  # 3 left: still waits; 2 left: half empty, goes on
        taken.append(scheduler.next_frame(timeout=1).index)  # type: ignore[union-attr]
        producer.join(0.3)
        assert producer.is_alive() is expected_alive
    buffer.close()
    taken += [frame.index for frame in iter(lambda: scheduler.next_frame(timeout=1), None)]
    assert taken == list(range(5)) and buffer.dropped == 0


def test_drop_oldest_keeps_freshest_and_counts() -> None:
    scheduler = FrameScheduler()
    buffer = scheduler.add_buffer("live", 4, BufferPolicy.DROP_OLDEST)
    for index in range(10):
        assert buffer.put(make_frame("live", index))
    buffer.close()
    received = [frame.index for frame in iter(lambda: scheduler.next_frame(timeout=1), None)]
    assert received == [6, 7, 8, 9]
    assert buffer.dropped == 6


def busy_and_quiet(busy_frames: int, quiet_frames: int) -> tuple[FrameScheduler, FrameBuffer, FrameBuffer]:
    """A scheduler over two sources, "busy" and "quiet", with that many frames buffered in each."""
    scheduler = FrameScheduler()
    busy = scheduler.add_buffer("busy", 100, BufferPolicy.BLOCK)
    quiet = scheduler.add_buffer("quiet", 100, BufferPolicy.BLOCK)
    for index in range(busy_frames):
        busy.put(make_frame("busy", index))
    for index in range(quiet_frames):
        quiet.put(make_frame("quiet", index))
    return scheduler, busy, quiet


def test_round_robin_across_sources() -> None:
    scheduler, _, _ = busy_and_quiet(50, 3)
    first_six = [scheduler.next_frame(timeout=1).source_id for _ in range(6)]  # type: ignore[union-attr]
    assert first_six.count("quiet") == 3


def test_closed_buffer_refuses_frames_and_releases_blocked_producer() -> None:
    scheduler = FrameScheduler()
    buffer = scheduler.add_buffer("a", 1, BufferPolicy.BLOCK)
    buffer.put(make_frame("a", 0))
    outcome: list[bool] = []
    producer = threading.Thread(target=lambda: outcome.append(buffer.put(make_frame("a", 1))))
    producer.start()
    time.sleep(0.05)
    buffer.close()
    producer.join(timeout=2)
    assert outcome == [False]
    assert scheduler.next_frame(timeout=1).index == 0  # type: ignore[union-attr]
    assert scheduler.next_frame(timeout=1) is None


def test_a_run_takes_only_buffered_frames_in_fair_order_up_to_its_limit() -> None:
    scheduler, busy, quiet = busy_and_quiet(6, 1)
    first = scheduler.next_frames(4, timeout=1)
    assert [(frame.source_id, frame.index) for frame in first] == [
        ("busy", 0),
        ("quiet", 0),
        ("busy", 1),
        ("busy", 2),
    ]
    started = time.perf_counter()
    rest = scheduler.next_frames(8, timeout=1)  # three are waiting: taken at once, no wait for more
    assert [frame.index for frame in rest] == [3, 4, 5] and time.perf_counter() - started < 0.5
    busy.close()
    quiet.close()
    assert scheduler.next_frames(8, timeout=1) == []
