"""Running a pipeline: sources -> buffers -> detector -> stages -> sinks, with ordered shutdown.

A :class:`Pipeline` only runs and stops what it is given; :mod:`streamproc.pipeline.build` makes the parts
from settings. Threads: one capture thread per source (decode, then the detector's ``prepare``),
this module's inference loop on the caller's thread (detect, stages, fan-out), one thread per sink.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.capture.base import Source, StatusListener, join_sources
from streamproc.capture.buffer import BufferPolicy, FrameBuffer, FrameScheduler, frames_within
from streamproc.config.settings import PICTURE_QUEUE_LIMIT
from streamproc.core.atomic_files import settle
from streamproc.core.events import EndReason, Event
from streamproc.core.frames import Frame, FrameResult, ModelInput, SourceState, StatusEvent, StreamInfo
from streamproc.core.locks import OutputLocks
from streamproc.core.memory import limit_malloc_arenas
from streamproc.core.stats import PipelineStats
from streamproc.inference.detector import Detector, detect_all
from streamproc.media.pixels import PixelPlan
from streamproc.sinks.base import Sink, SinkRunner, all_finished, close_runners
from streamproc.stages.base import Stage

log = logging.getLogger(__name__)

ProgressCallback = Callable[[FrameResult], None]
# frames the inference loop takes at once when they are waiting: the model runs on all of them,
# then decoding, stages and sinks, with warmer caches (see BlazeFaceDetector.detect_many)
RUN_FRAMES = 8
LIVE_RUN_MS = 10.0  # with live sources, a run is only as long as the detector needs this long for


@dataclass
class SourceReport:
    source_id: str
    url: str
    state: str
    frames_decoded: int = 0
    frames_processed: int = 0
    dropped: int = 0
    error: str | None = None
    live: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunReport:
    """What a run did; the CLI turns it into an exit code and a summary line."""

    sources: list[SourceReport] = field(default_factory=list)
    sink_errors: dict[str, str] = field(default_factory=dict)
    frames_processed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    kept: list[Path] = field(default_factory=list)  # outputs a failed run left beside their targets
    # per sink: frames received, written, and not written by reason (SinkRunner.accounting)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every file was read in full, no sink failed, and (with cameras) at least one camera was
        still running: a camera that fails while others stream is reported, not fatal."""
        files_ok = all(source.ok for source in self.sources if not source.live)
        live = [source for source in self.sources if source.live]
        live_ok = not live or any(source.ok for source in live)
        return files_ok and live_ok and not self.sink_errors

    def problems(self) -> list[str]:
        found = [f"{s.source_id}: {s.error}" for s in self.sources if s.error]
        found += [f"sink {name}: {error}" for name, error in self.sink_errors.items()]
        return found


@dataclass(frozen=True)
class OpenedSource:
    """A source whose input is open, with how its frames wait for inference."""

    source: Source
    info: StreamInfo
    policy: BufferPolicy
    buffer_size: int


class StatusRelay:
    """Hands source state changes to the stats, the running sinks and the caller's listener.

    Sources get it before the pipeline exists (they report while opening), so sinks join later.
    """

    def __init__(self, stats: PipelineStats, listener: StatusListener | None = None) -> None:
        self._stats = stats
        self._listener = listener
        self._runners: list[SinkRunner] = []

    def attach(self, runners: Sequence[SinkRunner]) -> None:
        self._runners = list(runners)

    def __call__(self, event: StatusEvent) -> None:
        self._stats.state_changed(event.source_id, event.state.value, event.message)
        for runner in self._runners:
            runner.submit_status(event)
        if self._listener is not None:
            self._listener(event)


class Pipeline:
    """One run over opened sources. ``run`` returns when every source has ended (files) or when
    ``stop`` is called, after every queued frame is processed and every sink has flushed."""

    def __init__(
        self,
        sources: Sequence[OpenedSource],
        detector: Detector,
        stages: Sequence[Stage],
        sinks: Sequence[Sink],
        *,
        pixels: PixelPlan,
        stats: PipelineStats,
        status: StatusRelay,
        duration: float | None = None,
        sink_queue_size: int = 64,
        queue_bytes: int | None = None,
        failed_at_open: Sequence[SourceReport] = (),
        locks: OutputLocks | None = None,
    ) -> None:
        self.detector = detector
        self.stages = list(stages)
        self.sinks = list(sinks)
        self.pixels = pixels
        self.stats = stats
        self.duration = duration
        self.streams = [opened.info for opened in sources]
        self._status = status
        self._sink_queue_size = sink_queue_size
        self._queue_bytes = queue_bytes
        self._failed_at_open = list(failed_at_open)
        self._locks = locks or OutputLocks()
        self._sources = [opened.source for opened in sources]
        self._scheduler = FrameScheduler(queue_bytes)  # decoded pictures in flight, bounded in bytes
        for opened in sources:
            capacity = self._fitting(opened.info, opened.buffer_size)
            buffer = self._scheduler.add_buffer(opened.info.source_id, capacity, opened.policy)
            opened.source.bind(buffer)
            stats.source(opened.info.source_id)
        self._stop = threading.Event()
        self._runners: list[SinkRunner] = []
        self._ended: set[str] = set()  # sources whose open tracks have been ended
        self._detect_ms = LIVE_RUN_MS  # the detector's time per frame, last measured (first run: 1 frame)

    def stop(self) -> None:
        """Ordered shutdown: stop capture; queued frames are still processed and sinks flushed.

        Safe to call from a signal handler or another thread.
        """
        self._stop.set()
        for source in self._sources:
            source.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def lossless(self) -> bool:
        """File runs keep every frame; runs with a live source drop rather than fall behind."""
        return not any(info.live for info in self.streams)

    @property
    def total_frames(self) -> int | None:
        """Frames expected over all sources, when every source knows its length."""
        totals = [info.total_frames for info in self.streams]
        return sum(totals) if totals and all(totals) else None  # type: ignore[arg-type]

    def buffer(self, source_id: str) -> FrameBuffer:
        """The frame buffer between a source's capture thread and inference."""
        return next(b for b in self._scheduler.buffers if b.source_id == source_id)

    def run(self, progress: ProgressCallback | None = None) -> RunReport:
        """Process until every source ends or ``stop`` is called."""
        self._runners = [SinkRunner(sink, self._queue_size(sink), self.lossless) for sink in self.sinks]
        self._status.attach(self._runners)
        for runner in self._runners:
            runner.start()
        if not self.lossless:  # live runs last: bound their memory (file runs keep glibc's faster default)
            limit_malloc_arenas()  # before the capture threads start: see streamproc.core.memory
        started = time.perf_counter()
        for source in self._sources:
            source.start(self._prepare)
        report = RunReport()
        try:
            report.frames_processed = self._loop(started, progress)
        finally:
            report.sinks = self._shut_down()
        report.seconds = time.perf_counter() - started
        report.interrupted = self._stop.is_set()
        report.sources = self._failed_at_open + [self._source_report(source) for source in self._sources]
        report.sink_errors = {r.sink.name: r.error for r in self._runners if r.error}
        # a failed run replaces no file that was there before: its outputs stay NAME.partial.EXT
        report.kept = settle([out for sink in self.sinks for out in sink.finished_outputs], report.ok)
        self._locks.release()
        return report

    def _prepare(self, frame: Frame) -> Frame:
        """On the capture thread: the detector's input, made while inference works on earlier frames;
        the decoded picture goes at once unless the pixel plan keeps it."""
        return frame.prepared(self.detector.prepare(frame.picture), self.pixels.keeps_pictures)

    def _loop(self, started: float, progress: ProgressCallback | None) -> int:
        processed = 0
        while True:
            elapsed = time.perf_counter() - started
            if self.duration is not None and not self.stopping and elapsed >= self.duration:
                log.info("ran for %g s (--duration): stopping", self.duration)
                self.stop()
            frames = self._scheduler.next_frames(self._run_length(), timeout=0.5)
            if not frames:
                self._end_finished_sources()
                if all(buffer.finished for buffer in self._scheduler.buffers):
                    return processed
                continue
            results = self._process(frames)
            for result in results:
                for runner in self._runners:
                    runner.submit(result)
                frame = result.frame
                self.stats.frame_processed(frame.source_id, frame.wall_time, len(result.detections))
                if progress is not None:
                    progress(result)
            processed += len(results)
            if all_finished(self.sinks) and not self.stopping:  # e.g. `--events - | head`: done
                log.info("every output's reader has gone: stopping")
                self.stop()
            del frames, results, result, frame  # let pictures go while waiting (capture.buffer.PictureBudget)
            self._end_finished_sources()

    def _process(self, frames: list[Frame]) -> list[FrameResult]:
        """Detection on a run of frames, then every stage in order on each, on the inference thread."""
        inputs: list[ModelInput] = []
        for frame in frames:
            assert frame.model_input is not None, "frames are prepared on the capture thread"
            inputs.append(frame.model_input)
        tick = time.perf_counter()
        found = detect_all(self.detector, inputs)
        detect_ms = self._detect_ms = (time.perf_counter() - tick) * 1000.0 / len(frames)
        results = []
        for frame, detections in zip(frames, found, strict=True):
            self.stats.inference(self.detector.name, detect_ms)
            events: list[Event] = []
            for stage in self.stages:
                detections, raised = stage.process(frame, detections)
                events.extend(raised)
            results.append(FrameResult(frame, detections, detect_ms, tuple(events)))
        return results

    def _run_length(self) -> int:
        """Frames to take at once: RUN_FRAMES for files; with live sources only what the detector
        gets through in LIVE_RUN_MS (a slow one takes one frame at a time, the freshest)."""
        if self.lossless:
            return RUN_FRAMES
        return max(1, min(RUN_FRAMES, int(LIVE_RUN_MS / max(self._detect_ms, 1e-3))))

    def _shut_down(self) -> dict[str, dict[str, Any]]:
        """Stop sources, end their tracks, close every sink; returns each sink's accounting."""
        for source in self._sources:  # not self.stop(): a run that ended by itself was not stopped
            source.stop()
        join_sources(self._sources)
        self._end_finished_sources(everything=True)
        return close_runners(self._runners)

    def _queue_size(self, sink: Sink) -> int:
        """Whole frames are big (1080p: 3 MB, 4K: 12 MB): a sink that keeps them queues fewer."""
        size = self._sink_queue_size
        if not sink.pixel_needs():
            return size
        largest = max(self.streams, key=lambda info: info.width * info.height)
        return self._fitting(largest, min(size, PICTURE_QUEUE_LIMIT))

    def _fitting(self, info: StreamInfo, frames: int) -> int:
        """At most ``frames`` pictures of this stream, and no more than queue_bytes of them."""
        if not self._queue_bytes:
            return frames
        return frames_within(self._queue_bytes, info.width, info.height, frames)

    def stats_snapshot(self) -> dict[str, Any]:
        """Current statistics, JSON-ready (see streamproc.core.stats)."""
        return stats_snapshot(self.stats, self._sources)

    def sources_snapshot(self) -> dict[str, dict[str, Any]]:
        """Each source's url, state, last error and frames waiting in its buffer, JSON-ready."""
        found: dict[str, dict[str, Any]] = {
            r.source_id: {"url": r.url, "state": r.state, "error": r.error, "buffered": 0}
            for r in self._failed_at_open
        }
        for source in self._sources:
            buffer = source.buffer
            found[source.source_id] = {
                "url": source.url,
                "state": source.state.value,
                "error": source.error,
                "message": source.message,
                "buffered": len(buffer) if buffer else 0,
            }
        return found

    def sinks_snapshot(self) -> dict[str, dict[str, Any]]:
        """Each running sink's queue depth, counts, error and backlog (messages it holds), JSON-ready."""
        return {
            runner.sink.name: {
                "queued": runner.queued,
                "handled": runner.handled,
                "dropped": runner.dropped,
                "not_written": runner.not_written(),
                "error": runner.error,
                "backlog": runner.sink.backlog,
                "problem": runner.sink.problem,
                "refused": runner.sink.refused,
            }
            for runner in self._runners
        }

    def _end_finished_sources(self, everything: bool = False) -> None:
        """Send the ``end`` events of sources that have no frames left (all of them at shutdown),
        and of cameras that dropped: their faces cannot be followed across the outage."""
        for source in self._sources:
            buffer = source.buffer
            if source.source_id in self._ended or buffer is None:
                continue
            if everything or buffer.finished:
                self._ended.add(source.source_id)
                reason: EndReason = "stopped" if self._stop.is_set() else "source_ended"
            elif source.state is SourceState.RECONNECTING and not len(buffer):
                reason = "lost"
            else:
                continue
            events = [event for stage in self.stages for event in stage.finish(source.source_id, reason)]
            for runner in self._runners:
                runner.submit_events(events)

    def _source_report(self, source: Source) -> SourceReport:
        buffer = source.buffer
        return SourceReport(
            source_id=source.source_id,
            url=source.url,
            state=source.state.value,
            frames_decoded=source.frames_decoded,
            frames_processed=self.stats.source(source.source_id).frames_processed,
            dropped=buffer.dropped if buffer is not None else 0,
            error=source.error,
            live=source.live,
        )


def stats_snapshot(stats: PipelineStats, sources: Sequence[Source]) -> dict[str, Any]:
    """Current statistics, JSON-ready, with each source's decoded, dropped and state counters."""
    for source in sources:
        buffer = source.buffer
        dropped = buffer.dropped if buffer is not None else 0
        damage = (source.packets_lost, source.decode_errors)
        stats.set_counts(
            source.source_id, source.frames_decoded, dropped, source.state.value, source.failures, damage
        )
    return stats.snapshot()


__all__ = ["OpenedSource", "Pipeline", "RunReport", "SourceReport", "StatusRelay"]
