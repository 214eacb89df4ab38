"""Run a pipeline in a background thread and watch it: results, status events, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from streamproc.config.settings import Settings
from streamproc.core.frames import FrameResult, SourceState, StatusEvent
from streamproc.inference.detector import Detector
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import RunReport
from streamproc.sinks.base import Sink

# fast retries so that outages in tests last seconds; rtsp-server-perl sends RTP over UDP only
LIVE: dict[str, Any] = {
    "transport": "udp",
    "connect_timeout": 3.0,
    "read_timeout": 2.0,
    "stall_timeout": 3.0,
    "reconnect": {"initial": 0.2, "factor": 2.0, "max": 1.0, "jitter": 0.2},
    "give_up_after": 0,  # a source that never streamed gives up after its attempts, at once
}


def live_settings(*urls: str, **extra: Any) -> Settings:
    """Settings for these inputs, named s0, s1, ... in order, with the test's live settings."""
    ids = [f"s{number}" for number in range(len(urls))]
    sources = [{"url": url, "id": id_, **extra.pop(id_, {})} for id_, url in zip(ids, urls, strict=True)]
    return Settings(sources=sources, live=LIVE, **extra)


@dataclass(frozen=True)
class Seen:
    """What a sink saw of one result (no pixels kept: long runs stay small)."""

    at: float  # time.monotonic() when the sink got it
    source_id: str
    index: int
    pts: float | None
    boxes: np.ndarray


class Collector(Sink):
    """A real sink plugin that keeps what it is given, for the test to inspect."""

    name = "collector"

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def handle(self, result: FrameResult) -> None:
        frame = result.frame
        item = Seen(time.monotonic(), frame.source_id, frame.index, frame.pts, result.detections.boxes.copy())
        with self._lock:
            self.seen.append(item)

    def of(self, source_id: str, since: float = 0.0) -> list[Seen]:
        with self._lock:
            return [item for item in self.seen if item.source_id == source_id and item.at >= since]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class LiveRun:
    """``with LiveRun(settings) as run:`` runs the pipeline until the block ends (or ``finish``)."""

    def __init__(
        self, settings: Settings, detector: Detector | None = None, extra_sinks: Sequence[Sink] = ()
    ) -> None:
        self.events: list[tuple[float, StatusEvent]] = []
        self.collector = Collector()
        self.pipeline = build_pipeline(
            settings,
            detector=detector,
            extra_sinks=[self.collector, *extra_sinks],
            status_listener=self._on_status,
        )
        self.report: RunReport | None = None
        self._thread = threading.Thread(target=self._run, name="test-pipeline")

    def _on_status(self, event: StatusEvent) -> None:
        self.events.append((time.monotonic(), event))

    def _run(self) -> None:
        self.report = self.pipeline.run()

    def __enter__(self) -> LiveRun:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()

    def finish(self, timeout: float = 20.0) -> RunReport:
        """Stop (ordered shutdown) and return the report."""
        self.pipeline.stop()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the pipeline did not stop"
        assert self.report is not None
        return self.report

    def wait_ended(self, timeout: float) -> RunReport:
        """Wait for the run to end by itself (every source finished or failed)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the run did not end within {timeout} s"
        assert self.report is not None
        return self.report

    def states(self, source_id: str, since: float = 0.0) -> list[SourceState]:
        return [e.state for at, e in self.events if e.source_id == source_id and at >= since]

    def messages(self, source_id: str, state: SourceState | None = None) -> list[str]:
        return [e.message for _, e in self.events if e.source_id == source_id and state in (None, e.state)]

    def first(self, source_id: str, state: SourceState, since: float = 0.0) -> float | None:
        """When ``source_id`` first entered ``state`` at or after ``since`` (monotonic seconds)."""
        matching = (at for at, e in self.events if e.source_id == source_id and e.state is state)
        return next((at for at in matching if at >= since), None)


def assert_no_thread_leak(before: set[threading.Thread], timeout: float) -> None:
    """Capture threads may finish a blocking FFmpeg call after shutdown; they must then be gone."""
    wait_until(lambda: set(threading.enumerate()) <= before, timeout, "the pipeline's threads to end")
