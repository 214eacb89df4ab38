"""Bounded per-source frame buffers and the fair hand-off to the inference stage."""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from enum import StrEnum

from streamproc.core.frames import Frame
from streamproc.core.pictures import ArrayPicture, ReleasedPicture

log = logging.getLogger(__name__)

BUDGET_WAIT_S = 1.0  # longest wait for picture memory: a stage that keeps a frame must not stall decoding


def frames_within(budget_bytes: int, width: int, height: int, wanted: int) -> int:
    """How many of ``wanted`` decoded frames of this size fit in ``budget_bytes`` (at least one):
    queues are bounded in bytes as well as frames, so that huge pictures do not multiply memory."""
    frame_bytes = width * height * 3 // 2  # yuv420p, as decoders deliver them
    return max(1, min(wanted, budget_bytes // frame_bytes)) if frame_bytes else wanted


def picture_bytes(frame: Frame) -> int:
    """Memory the frame's decoded picture holds (0 once its pixels were released)."""
    picture = frame.picture
    if isinstance(picture, ReleasedPicture):
        return 0
    bytes_per_pixel = 3.0 if isinstance(picture, ArrayPicture) else 1.5  # BGR, or yuv420p as decoded
    return int(frame.width * frame.height * bytes_per_pixel)


class PictureBudget:
    """Bytes of decoded pictures alive anywhere between decoding and the sinks, for lossless sources.

    A decoder waits before handing over a frame while the pictures still in the pipeline (buffered,
    in inference, queued for or in a sink) would exceed the budget; a frame's bytes return when
    the last reference to it goes. Each source may always have FREE_PER_SOURCE frames alive (a sink
    such as the live view keeps its latest one), and no wait lasts longer than BUDGET_WAIT_S (a
    part that keeps frames longer must slow a run down, not stall it).
    """

    FREE_PER_SOURCE = 2

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._alive: dict[str, int] = {}  # source id -> its frames that hold pictures
        self._room = threading.Condition()

    def take(self, frame: Frame) -> None:
        """Wait until ``frame``'s picture fits (see the class docstring), then count it."""
        size, source = picture_bytes(frame), frame.source_id
        if not size:
            return

        def fits() -> bool:
            return self._alive.get(source, 0) < self.FREE_PER_SOURCE or self.used + size <= self.limit

        with self._room:
            if not self._room.wait_for(fits, BUDGET_WAIT_S):
                log.debug("picture budget: %d bytes in flight after %g s; going on", self.used, BUDGET_WAIT_S)
            self.used += size
            self._alive[source] = self._alive.get(source, 0) + 1
        weakref.finalize(frame, self._give_back, size, source)

    def _give_back(self, size: int, source: str) -> None:
        with self._room:
            self.used -= size
            self._alive[source] -= 1
            self._room.notify_all()


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
        self,
        source_id: str,
        capacity: int,
        policy: BufferPolicy,
        condition: threading.Condition,
        budget: PictureBudget | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.source_id = source_id
        self.capacity = capacity
        self.policy = policy
        self.dropped = 0
        self._frames: deque[Frame] = deque()
        self._condition = condition
        self._budget = budget if policy is BufferPolicy.BLOCK else None  # live sources drop instead
        self._closed = False

    def put(self, frame: Frame, wait: bool = False) -> bool:
        """Add a frame; returns False when the buffer was closed and the frame was not taken.
        ``wait``: wait for room whatever the policy (a live source's start-up burst)."""
        if self._budget is not None and not self._closed:
            self._budget.take(frame)
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

    def __init__(self, picture_bytes: int | None = None) -> None:
        self.condition = threading.Condition()
        self._buffers: list[FrameBuffer] = []
        self._next = 0
        # one budget for every lossless source: memory is bounded for the run, not per source
        self.budget = PictureBudget(picture_bytes) if picture_bytes else None

    def add_buffer(self, source_id: str, capacity: int, policy: BufferPolicy) -> FrameBuffer:
        buffer = FrameBuffer(source_id, capacity, policy, self.condition, self.budget)
        with self.condition:
            self._buffers.append(buffer)
        return buffer

    @property
    def buffers(self) -> list[FrameBuffer]:
        return list(self._buffers)

    def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame in fair order; None once every buffer is finished or on timeout."""
        frames = self.next_frames(1, timeout)
        return frames[0] if frames else None

    def next_frames(self, limit: int, timeout: float | None = None) -> list[Frame]:
        """Up to ``limit`` frames in fair order: waits for the first, then takes only what is
        already buffered (never waits to fill a run). Empty once every buffer is finished or on
        timeout."""
        with self.condition:
            while True:
                taken = self._take(limit)
                if taken or all(buffer.finished for buffer in self._buffers):
                    return taken
                if not self.condition.wait(timeout):
                    return taken

    def _take(self, limit: int) -> list[Frame]:
        """Buffered frames round-robin over the sources, at most ``limit``; the lock is held."""
        taken: list[Frame] = []
        count = len(self._buffers)
        idle = 0  # buffers passed in a row that had nothing
        while len(taken) < limit and idle < count:
            buffer = self._buffers[self._next]
            self._next = (self._next + 1) % count
            if buffer:
                taken.append(buffer._pop())
                idle = 0
            else:
                idle += 1
        return taken
