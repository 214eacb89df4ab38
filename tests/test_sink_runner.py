"""The sink runner's queue: lossless runs wait for room in long runs, live runs drop and count."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np

from streamproc.core.frames import Detections, Frame, FrameResult, StreamInfo
from streamproc.core.pictures import ArrayPicture
from streamproc.sinks.base import Sink, SinkRunner

INFO = StreamInfo("cam", "cam", 4, 4, 25.0, Fraction(1, 25))
NO_FACES = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32))


def result(index: int) -> FrameResult:
    frame = Frame(INFO, index, index / 25, index, time.time(), ArrayPicture(np.zeros((4, 4, 3), np.uint8)))
    return FrameResult(frame, NO_FACES)


class GatedSink(Sink):
    """Handles one result each time the test opens the gate."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.handled: list[int] = []

    def handle(self, result: FrameResult) -> None:
        self.gate.acquire()
        self.handled.append(result.frame.index)


def test_a_producer_held_by_a_full_queue_resumes_once_it_is_half_empty() -> None:
    sink = GatedSink()
    runner = SinkRunner(sink, queue_size=4, lossless=True)
    runner.start()
    runner.submit(result(0))
    deadline = time.monotonic() + 5
    while runner.queued and time.monotonic() < deadline:  # the sink takes it and waits at its gate
        time.sleep(0.01)
    for index in range(1, 5):  # four wait in the queue: full
        runner.submit(result(index))
    producer = threading.Thread(target=runner.submit, args=(result(5),))
    producer.start()
    producer.join(0.3)
    assert producer.is_alive(), "a full lossless queue must make the producer wait"

    sink.gate.release()  # one taken: three waiting, more than half of four
    producer.join(0.3)
    assert producer.is_alive(), "the producer must wait until the queue is half empty"

    sink.gate.release()  # two waiting: half empty
    producer.join(5)
    assert not producer.is_alive()

    for _ in range(4):
        sink.gate.release()
    runner.close()
    assert sink.handled == list(range(6)) and runner.dropped == 0


def test_a_live_queue_that_is_full_drops_and_counts() -> None:
    sink = GatedSink()
    runner = SinkRunner(sink, queue_size=2, lossless=False)
    runner.start()
    for index in range(10):
        runner.submit(result(index))  # never waits
    for _ in range(10):
        sink.gate.release()
    runner.close()
    assert runner.dropped == 10 - len(sink.handled) and 2 <= len(sink.handled) <= 3
    assert sink.handled == sorted(sink.handled)
