"""Bounded per-source frame buffers and the fair hand-off to the inference stage."""

from __future__ import annotations

import threading
from collections import deque
from enum import StrEnum

from streamproc.frames import Frame


class BufferPolicy(StrEnum):
    """What a full buffer does with a new frame."""

    BLOCK = "block"  # the producer waits: lossless, for files
    DROP_OLDEST = "drop_oldest"  # the oldest frame is discarded: freshest frames, for live sources


class FrameBuffer:
    """A bounded FIFO between one source's decoder and the inference stage.

    Every buffer of a pipeline shares one condition variable with the :class:`FrameScheduler`,
    so the consumer sleeps until any source has a frame.
    """

    def __init__(
        self, source_id: str, capacity: int, policy: BufferPolicy, condition: threading.Condition
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.source_id = source_id
        self.capacity = capacity
        self.policy = policy
        self.dropped = 0
        self._frames: deque[Frame] = deque()
        self._condition = condition
        self._closed = False

    def put(self, frame: Frame, wait: bool = False) -> bool:
        """Add a frame; returns False when the buffer was closed and the frame was not taken.
        ``wait``: wait for room whatever the policy (a live source's start-up burst)."""
        with self._condition:
            if self.policy is BufferPolicy.BLOCK or wait:
                if len(self._frames) >= self.capacity:
                    # wait until half empty, not for one slot: decoder and inference then work in
                    # runs of frames instead of taking turns frame by frame (warmer caches)
                    while len(self._frames) > self.capacity // 2 and not self._closed:
                        self._condition.wait()
            elif len(self._frames) >= self.capacity:
                self._frames.popleft()
                self.dropped += 1
            if self._closed:
                return False
            self._frames.append(frame)
            self._condition.notify_all()
            return True

    def close(self) -> None:
        """No more frames will come; the consumer still drains what is queued."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def finished(self) -> bool:
        """Closed and drained."""
        return self._closed and not self._frames

    def __len__(self) -> int:
        return len(self._frames)

    def _pop(self) -> Frame:
        frame = self._frames.popleft()
        self._condition.notify_all()  # wake a producer blocked on a full buffer
        return frame


class FrameScheduler:
    """Hands frames from many buffers to the inference stage, round-robin.

    Round-robin over the sources that have frames means a fast source cannot starve a slow one.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._buffers: list[FrameBuffer] = []
        self._next = 0

    def add_buffer(self, source_id: str, capacity: int, policy: BufferPolicy) -> FrameBuffer:
        buffer = FrameBuffer(source_id, capacity, policy, self.condition)
        with self.condition:
            self._buffers.append(buffer)
        return buffer

    @property
    def buffers(self) -> list[FrameBuffer]:
        return list(self._buffers)

    def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame in fair order; None once every buffer is finished or on timeout."""
        with self.condition:
            while True:
                count = len(self._buffers)
                for step in range(count):
                    buffer = self._buffers[(self._next + step) % count]
                    if buffer:
                        self._next = (self._next + step + 1) % count
                        return buffer._pop()
                if all(buffer.finished for buffer in self._buffers):
                    return None
                if not self.condition.wait(timeout):
                    return None
