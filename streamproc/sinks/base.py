"""The sink plugin interface and the runner that isolates each sink in its own thread."""

from __future__ import annotations

import logging
import os
import queue
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.core.atomic_files import is_stream
from streamproc.core.errors import OutputError
from streamproc.core.events import Event
from streamproc.core.frames import FrameResult, StatusEvent
from streamproc.core.priority import lower_thread_priority
from streamproc.media.pixels import PixelFormat, PixelPlan

log = logging.getLogger(__name__)

StatsProvider = Callable[[], dict[str, Any]]  # the run's live numbers, for sinks that publish them


class Sink(ABC):
    """A destination for results. ``open`` runs at start-up (fail fast on bad outputs), ``handle`` in
    the sink's own thread for every result, ``close`` once at the end to flush."""

    name: str = "sink"

    def pixel_needs(self) -> frozenset[PixelFormat]:
        """The pixel formats ``handle`` reads (see :mod:`streamproc.media.pixels`); none by default, and
        when no sink or stage reads any, frames drop their pixels once the detector's input is made."""
        return frozenset()

    @property
    def backlog(self) -> int | None:
        """Messages this sink holds of its own beyond its queue (e.g. unacknowledged MQTT publishes);
        None for sinks that hold none."""
        return None

    @property
    def problem(self) -> str | None:
        """Why this sink is not writing right now while it retries a failed write (disk full on a live
        run); None while it writes. /readyz reports it."""
        return None

    @property
    def finished(self) -> bool:
        """Nothing more to write: the only reader went away (standard output closed by ``| head``).
        When every sink of a run is finished, the run stops."""
        return False

    @property
    def refused(self) -> int | None:
        """Messages the receiver refused (MQTT 5 reason codes >= 0x80); None for sinks without a
        receiver that can refuse."""
        return None

    @property
    def written(self) -> int | None:
        """Frames this sink wrote, counted by the sink itself; None for sinks that write every frame
        they handle (then: frames handled)."""
        return None

    @property
    def not_written(self) -> Mapping[str, int]:
        """Frames this sink was given and did not write, by reason (e.g. ``{"no faces": 12}``)."""
        return {}

    def handle_summary(self, sinks: Mapping[str, Mapping[str, Any]]) -> None:  # noqa: B027 - optional hook
        """The run's end: every sink's accounting (see :meth:`SinkRunner.accounting`), given once after
        every sink has handled its last frame and before ``close``."""

    @property
    def finished_outputs(self) -> Sequence[tuple[Path, Path]]:
        """After ``close``: ``(partial, target)`` of each file written aside and complete. The run
        moves them over their targets (:func:`streamproc.files.settle`), or keeps them aside when
        it failed and the target exists."""
        return ()

    def open(self, pixels: PixelPlan) -> None:  # noqa: B027 - optional hook
        """Check and create outputs (raise OutputError naming the problem); take the pixel readers
        this sink declared from ``pixels``."""

    @abstractmethod
    def handle(self, result: FrameResult) -> None: ...

    def handle_status(self, event: StatusEvent) -> None:  # noqa: B027 - optional hook
        """A source changed state (connecting, streaming, stopped, failed...)."""

    def handle_events(self, events: Sequence[Event]) -> None:  # noqa: B027 - optional hook
        """Track and scene events (``streamproc.analysis.events``), in order: those a frame raised right after
        its ``handle``, and the ``end`` events of a source that finished. Never dropped."""

    def stopping(self) -> None:  # noqa: B027 - optional hook
        """The run is ending (called from another thread, before ``close``): a sink waiting to
        retry a failed write gives up within its shutdown grace."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release outputs."""


class ForwardingSink(Sink):
    """A sink around another: every hook goes to ``inner``; a subclass overrides what it adds (a
    distributed worker's sinks report their tracks' ends). A hook added to :class:`Sink` is
    forwarded here too (``tests/test_plugins.py`` checks that none is missed)."""

    def __init__(self, inner: Sink) -> None:
        self.inner, self.name = inner, inner.name

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return self.inner.pixel_needs()

    @property
    def backlog(self) -> int | None:
        return self.inner.backlog

    @property
    def problem(self) -> str | None:
        return self.inner.problem

    @property
    def finished(self) -> bool:
        return self.inner.finished

    @property
    def refused(self) -> int | None:
        return self.inner.refused

    @property
    def written(self) -> int | None:
        return self.inner.written

    @property
    def not_written(self) -> Mapping[str, int]:
        return self.inner.not_written

    @property
    def finished_outputs(self) -> Sequence[tuple[Path, Path]]:
        return self.inner.finished_outputs

    def open(self, pixels: PixelPlan) -> None:
        self.inner.open(pixels)

    def handle(self, result: FrameResult) -> None:
        self.inner.handle(result)

    def handle_status(self, event: StatusEvent) -> None:
        self.inner.handle_status(event)

    def handle_events(self, events: Sequence[Event]) -> None:
        self.inner.handle_events(events)

    def handle_summary(self, sinks: Mapping[str, Mapping[str, Any]]) -> None:
        self.inner.handle_summary(sinks)

    def stopping(self) -> None:
        self.inner.stopping()

    def close(self) -> None:
        self.inner.close()


SOURCE_FIELD = "{source}"


def source_path(template: Path, source_id: str) -> Path:
    """Expand '{source}' in an output path template."""
    return Path(str(template).replace(SOURCE_FIELD, source_id))


def one_file(template: Path) -> bool:
    """Whether every source writes to the same file (no '{source}' in the path)."""
    return SOURCE_FIELD not in str(template)


def ensure_writable_file(path: Path, what: str) -> None:
    """Fail at start-up, not after an hour of processing, when an output cannot be written."""
    if is_stream(path):  # opening a named pipe would wait for its reader: the permission says enough
        if not os.access(path, os.W_OK):
            raise OutputError(f"cannot write {what} {path}: permission denied: choose another path")
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a directory: give a file name")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder {parent} for {what}: {exc.strerror}") from None
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {what} {path}: {exc.strerror}: choose another path") from None


_STOP = object()
QUEUE_FULL = "queue full"  # live runs drop rather than stall inference
SINK_FAILED = "sink failed"  # a sink that raised is skipped for the rest of the run


class _Slots:
    """Room for frames in a sink's queue. A producer that found the queue full waits until it is
    half empty (not for a single free slot): producer and sink then work in long runs instead of
    taking turns frame by frame, which keeps each one's caches warm."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._resume_at = size // 2
        self._used = 0
        self._room = threading.Condition(threading.Lock())

    def acquire(self, blocking: bool = True) -> bool:
        with self._room:
            if self._used >= self._size:
                if not blocking:
                    return False
                self._room.wait_for(lambda: self._used <= self._resume_at)
            self._used += 1
            return True

    def release(self) -> None:
        with self._room:
            self._used -= 1
            if self._used == self._resume_at:
                self._room.notify_all()


@dataclass(frozen=True)
class _EventBatch:
    events: tuple[Event, ...]


@dataclass(frozen=True)
class _Summary:
    sinks: Mapping[str, Mapping[str, Any]]


class SinkRunner:
    """Runs one sink in its own thread behind a queue holding at most ``queue_size`` frames.

    ``lossless`` runners make the producer wait when the queue is full (file runs: nothing lost);
    otherwise results that do not fit are dropped and counted (live runs: never stall inference).
    Status changes and events are rare and small: they are always queued, in order, and never make
    the producer wait. A sink that raises is reported once and then skipped; other sinks carry on.
    """

    def __init__(self, sink: Sink, queue_size: int, lossless: bool = True) -> None:
        self.sink = sink
        self.lossless = lossless
        self.received = 0  # frames submitted
        self._stopping = False
        self.dropped = 0
        self.handled = 0
        self.error: str | None = None
        self._skipped_here = self._skipped_there = 0  # frames a failed sink was not given
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()  # frames are bounded by _slots
        self._slots = _Slots(queue_size)
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)

    @property
    def failed(self) -> bool:
        return self.error is not None

    def start(self) -> None:
        self._thread.start()

    @property
    def queued(self) -> int:
        """Results and status events waiting for the sink."""
        return self._queue.qsize()

    def submit(self, result: FrameResult) -> None:
        self.received += 1
        if self.failed:
            self._skipped_here += 1
            return
        if self._slots.acquire(blocking=self.lossless):
            self._queue.put(result)
            return
        self.dropped += 1
        if result.events:  # the frame may go, its events may not
            self._queue.put(_EventBatch(result.events))

    def submit_events(self, events: Sequence[Event]) -> None:
        """Events not tied to a frame (e.g. ``end`` when a source finishes): always queued."""
        if events and not self.failed:
            self._queue.put(_EventBatch(tuple(events)))

    def submit_status(self, event: StatusEvent) -> None:
        """Status changes are rare and small: always queued, never dropped."""
        if not self.failed:
            self._queue.put(event)

    def not_written(self) -> dict[str, int]:
        """Frames this sink was given and did not write, by reason."""
        counts = Counter({QUEUE_FULL: self.dropped, SINK_FAILED: self._skipped_here + self._skipped_there})
        counts.update(self.sink.not_written)
        return {reason: count for reason, count in sorted(counts.items()) if count}

    def accounting(self) -> dict[str, Any]:
        """``{"received", "written", "not_written": {reason: frames}}``; once the sink has handled
        everything, received = written + the frames not written."""
        written = self.sink.written
        return {
            "received": self.received,
            "written": self.handled if written is None else written,
            "not_written": self.not_written(),
        }

    def stopping(self) -> None:
        """Tell the sink the run is ending (once): one retrying a failed write gives up in its grace."""
        if not self._stopping:
            self._stopping = True
            self.sink.stopping()

    def drained(self) -> threading.Event:
        """An event set once the sink has handled everything queued before this call."""
        done = threading.Event()
        self._queue.put(done)
        return done

    def stop(self, summary: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Tell the sink the run is ending (with every sink's accounting, if given); it finishes what
        is queued, then flushes and closes."""
        self.stopping()
        if summary is not None:
            self._queue.put(_Summary(summary))
        self._queue.put(_STOP)

    def close(self) -> None:
        """Let the sink finish what is queued, then flush and close it."""
        self.stop()
        self._thread.join()

    def join(self) -> None:
        """Wait until the sink is closed (after :meth:`stop`): apart, so that stops can run side by side."""
        self._thread.join()

    def _run(self) -> None:
        if self.lossless:
            lower_thread_priority()  # a file run's results wait in the queue: inference goes first
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if isinstance(item, FrameResult):
                self._slots.release()
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self.failed:
                self._skipped_there += isinstance(item, FrameResult)
                continue  # keep draining so producers never block on a dead sink
            try:
                if isinstance(item, _Summary):
                    self.sink.handle_summary(item.sinks)
                elif isinstance(item, StatusEvent):
                    self.sink.handle_status(item)
                elif isinstance(item, _EventBatch):
                    self.sink.handle_events(item.events)
                elif isinstance(item, FrameResult):
                    self._handle(item)
                    if item.events:
                        self.sink.handle_events(item.events)
            except Exception as exc:
                self._fail(exc)
            item = None  # let the frame's picture go while waiting (capture.buffer.PictureBudget)
        skipped = self._skipped_here + self._skipped_there  # the producer has stopped submitting
        if self.error is not None and skipped:  # what a failed sink missed is lost: say how much
            self.error += f" ({skipped} frames not written, from the one it failed on)"
        try:
            self.sink.close()
        except Exception as exc:  # the run is ending: its summary says so, once
            if self.error is None:
                dropped = f" (and {self.dropped} frames dropped from its full queue)" if self.dropped else ""
                self.error = (str(exc) or type(exc).__name__) + dropped
            log.debug("sink %s traceback", self.sink.name, exc_info=True)

    def _handle(self, result: FrameResult) -> None:
        try:
            self.sink.handle(result)
        except Exception:
            self._skipped_there += 1  # the frame it failed on is not written either
            raise
        self.handled += 1

    def _fail(self, exc: Exception) -> None:
        if self.error is None:
            self.error = str(exc) or type(exc).__name__
            log.error("sink %s failed: %s (other sinks continue)", self.sink.name, self.error)
            log.debug("sink %s traceback", self.sink.name, exc_info=True)


def close_runners(runners: Sequence[SinkRunner]) -> dict[str, dict[str, Any]]:
    """Stop every sink at once, then wait for each: their shutdown graces run side by side. Once
    every sink has handled its last frame, each is given every sink's accounting (the JSON Lines
    sink writes it as its last line), then closed. Returns that accounting."""
    for runner in runners:
        runner.stopping()
    for done in [runner.drained() for runner in runners]:
        done.wait()
    summary = {runner.sink.name: runner.accounting() for runner in runners}
    for runner in runners:
        runner.stop(summary)
    for runner in runners:
        runner.join()
    return summary


def all_finished(sinks: Sequence[Sink]) -> bool:
    """Whether a run has sinks and every one of them has nothing more to write."""
    return bool(sinks) and all(sink.finished for sink in sinks)
