"""Wiring and lifecycle: sources -> buffers -> detector -> sinks, with ordered shutdown."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamproc.analysis import Analysis, build_analysis
from streamproc.capture.base import Source, SourceState, StatusEvent, StatusListener, join_sources
from streamproc.capture.buffer import BufferPolicy, FrameScheduler, frames_within
from streamproc.capture.factory import build_source
from streamproc.capture.urls import default_source_id
from streamproc.config import PICTURE_QUEUE_LIMIT, Settings, SinkSettings, SourceSettings
from streamproc.errors import ConfigError, InputError
from streamproc.events import EndReason
from streamproc.frames import Frame, FrameResult, StreamInfo
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.memory import limit_malloc_arenas
from streamproc.outputs import check_outputs, input_files
from streamproc.sinks.base import Sink, SinkRunner
from streamproc.sinks.jsonl import JsonlSink
from streamproc.sinks.mqtt import MqttSink, StatsProvider
from streamproc.sinks.video import VideoSink
from streamproc.stats import PipelineStats

log = logging.getLogger(__name__)

ProgressCallback = Callable[[FrameResult], None]


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


def build_sink(settings: SinkSettings, run: Settings, stats: StatsProvider | None = None) -> Sink:
    """The sink plugin for a ``sinks:`` entry, chosen by its ``type``."""
    factories: dict[str, Callable[[], Sink]] = {
        "jsonl": lambda: JsonlSink(settings),  # type: ignore[arg-type]
        "video": lambda: VideoSink(settings),  # type: ignore[arg-type]
        "mqtt": lambda: MqttSink(settings, run.mqtt, stats),  # type: ignore[arg-type]
    }
    return factories[settings.type]()


def source_id_for(settings: SourceSettings, taken: set[str]) -> str:
    """A unique, readable id: the configured one, else one from the url (numbered on clashes)."""
    if settings.id:
        if settings.id in taken:
            raise ConfigError(f"source id '{settings.id}' is used twice: give each source its own id")
        return settings.id
    base = default_source_id(settings.url)
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def buffer_policy(settings: SourceSettings, info: StreamInfo) -> BufferPolicy:
    if settings.buffer_policy == "auto":
        return BufferPolicy.DROP_OLDEST if info.live else BufferPolicy.BLOCK
    return BufferPolicy(settings.buffer_policy)


class Pipeline:
    """One run over the configured sources. ``run`` returns when every source has ended (files) or
    when ``stop`` is called, after every queued frame is processed and every sink has flushed."""

    def __init__(
        self,
        settings: Settings,
        detector: BlazeFaceDetector | None = None,
        status_listener: StatusListener | None = None,
        extra_sinks: Sequence[Sink] = (),
    ) -> None:
        if not settings.sources:
            raise ConfigError("no input given: name a video file (streamproc run VIDEO.mp4) or list sources")
        self.settings = settings
        self._detector = detector
        self._status_listener = status_listener
        self._stop = threading.Event()
        self._scheduler = FrameScheduler(settings.queue_bytes)  # pictures in flight, bounded in bytes
        self._sources: list[Source] = []
        self.stats = PipelineStats()
        self._failed_at_open: list[SourceReport] = []
        self.streams: list[StreamInfo] = []
        self._runners: list[SinkRunner] = []
        self._extra_sinks = list(extra_sinks)  # sinks built by the caller, e.g. the HTTP live view
        self._analysis: Analysis | None = None
        self._ended: set[str] = set()  # sources whose tracks have been ended

    def stop(self) -> None:
        """Ordered shutdown: stop capture; queued frames are still processed and sinks flushed.

        Safe to call from a signal handler or another thread.
        """
        self._stop.set()
        self._stop_sources()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _stop_sources(self) -> None:
        for source in self._sources:
            source.stop()

    @property
    def total_frames(self) -> int | None:
        """Frames expected over all sources, when every source knows its length."""
        totals = [info.total_frames for info in self.streams]
        return sum(totals) if totals and all(totals) else None  # type: ignore[arg-type]

    def open(self) -> None:
        """Open sources and sinks, failing fast with a one-line error on bad inputs and outputs."""
        self._analysis = build_analysis(self.settings, self.stats.inference)  # bad models: before inputs
        source_ids: list[str] = []
        for source_settings in self.settings.sources:
            source_ids.append(source_id_for(source_settings, set(source_ids)))
        # outputs that would destroy an input or each other: refused before anything is opened
        check_outputs(self.settings.sinks, input_files(self.settings.sources, source_ids))
        single = len(self.settings.sources) == 1
        for source_settings, source_id in zip(self.settings.sources, source_ids, strict=True):
            source = build_source(self.settings, source_settings, source_id, self._on_status)
            try:
                info = source.open()
            except InputError as exc:
                if single:
                    raise
                log.error("source %s: %s (other sources continue)", source_id, exc)
                self._on_status(StatusEvent(source_id, SourceState.FAILED, str(exc), time.time()))
                self._failed_at_open.append(
                    SourceReport(
                        source_id, source.url, SourceState.FAILED.value, error=str(exc), live=source.live
                    )
                )
                continue
            policy = buffer_policy(source_settings, info)
            wanted = source_settings.buffer_size
            capacity = frames_within(self.settings.queue_bytes, info.width, info.height, wanted)
            buffer = self._scheduler.add_buffer(source_id, capacity, policy)
            self._sources.append(source)
            self.streams.append(info)
            self.stats.source(source_id)
            source.bind(buffer)
        if not self._sources:
            raise InputError(
                "no input could be opened: " + "; ".join(r.error or "" for r in self._failed_at_open)
            )
        if self._detector is None:
            detector_settings = self.settings.detector
            self._detector = BlazeFaceDetector(
                variant=detector_settings.model,
                min_score=detector_settings.min_score,
                nms_iou=detector_settings.nms_iou,
                num_threads=detector_settings.threads,
            )
        self._sinks = [build_sink(sink, self.settings, self.stats_snapshot) for sink in self.settings.sinks]
        self._sinks += self._extra_sinks
        for sink in self._sinks:
            sink.open()

    def run(self, progress: ProgressCallback | None = None) -> RunReport:
        """Process until every source ends or ``stop`` is called; call ``open`` first."""
        detector = self._detector
        assert detector is not None, "open() first"
        lossless = not any(info.live for info in self.streams)
        runners = [SinkRunner(sink, self._queue_size(sink), lossless) for sink in self._sinks]
        self._runners = runners
        for runner in runners:
            runner.start()
        model_name = f"blazeface-{self.settings.detector.model}"
        # by frame size, not by source: a camera's size is known once connected and may change
        letterbox = functools.lru_cache(maxsize=64)(detector.letterbox)

        input_key = f"input:{model_name}"

        def model_input(frame: Frame) -> np.ndarray:
            box = letterbox(frame.width, frame.height)
            return frame.derived(
                input_key, lambda: detector.input_tensor(frame.rgb(box.scaled_width, box.scaled_height), box)
            )

        keep_pixels = self._needs_pictures()

        def prepare(frame: Frame) -> Frame:
            model_input(frame)  # the capture thread scales and normalises: overlaps with inference
            return frame if keep_pixels else frame.without_pixels()

        if not lossless:  # live runs last: bound their memory (file runs keep glibc's faster default)
            limit_malloc_arenas()  # before the capture threads start: see streamproc.memory
        started = time.perf_counter()
        duration = self.settings.duration
        for source in self._sources:
            source.start(prepare)
        report = RunReport()
        try:
            while True:
                if duration is not None and time.perf_counter() - started >= duration and not self.stopping:
                    log.info("ran for %g s (--duration): stopping", duration)
                    self.stop()
                frame = self._scheduler.next_frame(timeout=0.5)
                if frame is None:
                    self._end_finished_sources()
                    if self._scheduler_finished():
                        break
                    continue
                box = letterbox(frame.width, frame.height)
                tick = time.perf_counter()
                detections = detector.detect_tensor(model_input(frame), box)
                detect_ms = (time.perf_counter() - tick) * 1000.0
                events: tuple = ()
                if self._analysis is not None:
                    detections, events = self._analysis.process(frame, detections)
                result = FrameResult(frame, detections, detect_ms, events)
                for runner in runners:
                    runner.submit(result)
                self.stats.inference(model_name, result.inference_ms)
                self.stats.frame_processed(frame.source_id, frame.wall_time, len(detections))
                report.frames_processed += 1
                if progress is not None:
                    progress(result)
                frame = result = None  # let the picture go while waiting (capture.buffer.PictureBudget)
                self._end_finished_sources()
        finally:
            self._stop_sources()
            join_sources(self._sources)
            self._end_finished_sources(everything=True)
            for runner in runners:
                runner.close()
        report.seconds = time.perf_counter() - started
        report.interrupted = self._stop.is_set()
        report.sources = self._failed_at_open + [self._source_report(source) for source in self._sources]
        report.sink_errors = {r.sink.name: r.error for r in runners if r.error}
        return report

    def _queue_size(self, sink: Sink) -> int:
        """Whole frames are big (1080p: 3 MB, 4K: 12 MB): a sink that keeps them queues fewer."""
        size = self.settings.sink_queue_size
        if not sink.needs_pictures:
            return size
        largest = max(self.streams, key=lambda info: info.width * info.height)
        wanted = min(size, PICTURE_QUEUE_LIMIT)
        return frames_within(self.settings.queue_bytes, largest.width, largest.height, wanted)

    def _needs_pictures(self) -> bool:
        """Whether any sink or stage reads pixels beyond the detector's input."""
        analysis = self._analysis is not None and self._analysis.needs_pictures
        return analysis or any(sink.needs_pictures for sink in self._sinks)

    def stats_snapshot(self) -> dict:
        """Current statistics, JSON-ready (see streamproc.stats)."""
        for source in self._sources:
            buffer = source.buffer
            dropped = buffer.dropped if buffer is not None else 0
            self.stats.set_counts(
                source.source_id, source.frames_decoded, dropped, source.state.value, source.failures
            )
        return self.stats.snapshot()

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
                "buffered": len(buffer) if buffer else 0,
            }
        return found

    def sinks_snapshot(self) -> dict[str, dict[str, Any]]:
        """Each running sink's queue depth, counts, error and (MQTT-like sinks) backlog, JSON-ready."""
        return {
            runner.sink.name: {
                "queued": runner.queued,
                "handled": runner.handled,
                "dropped": runner.dropped,
                "error": runner.error,
                # a sink that holds messages of its own (e.g. unacknowledged MQTT publishes) says so
                "backlog": getattr(runner.sink, "backlog", None),
                # a sink that is retrying a failed write (disk full) says why: /readyz reports it
                "problem": getattr(runner.sink, "problem", None),
                # messages the receiver refused (MQTT 5 reason codes >= 0x80)
                "refused": getattr(runner.sink, "refused", None),
            }
            for runner in self._runners
        }

    def _on_status(self, event: StatusEvent) -> None:
        """Source state changes go to the stats, every sink and the caller's listener."""
        self.stats.state_changed(event.source_id, event.state.value, event.message)
        for runner in self._runners:
            runner.submit_status(event)
        if self._status_listener is not None:
            self._status_listener(event)

    def _end_finished_sources(self, everything: bool = False) -> None:
        """Send the ``end`` events of sources that have no frames left (all of them at shutdown),
        and of cameras that dropped: their faces cannot be followed across the outage."""
        if self._analysis is None:
            return
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
            events = self._analysis.finish(source.source_id, reason)
            for runner in self._runners:
                runner.submit_events(events)

    def _scheduler_finished(self) -> bool:
        return all(buffer.finished for buffer in self._scheduler.buffers)

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


def run_pipeline(settings: Settings, progress: ProgressCallback | None = None) -> RunReport:
    """Open and run a pipeline in one call (library use and tests)."""
    pipeline = Pipeline(settings)
    pipeline.open()
    return pipeline.run(progress)


__all__ = ["Pipeline", "RunReport", "SourceReport", "run_pipeline"]
