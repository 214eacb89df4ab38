"""Making a pipeline from settings: every part is built and opened here, then handed to
:class:`streamproc.pipeline.run.Pipeline`, which only runs it.

Order matters for users: output paths are checked first, then the classifier is loaded, inputs
opened, the detector loaded and outputs opened, so each mistake is reported before anything is
written. Callers (the CLI, the HTTP API, distributed workers, tests) pass in whatever they make
themselves: a detector, extra stages, extra sinks, a sink wrapper, a status listener.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from streamproc.analysis.events import RunIds, files_run_id
from streamproc.capture.buffer import BufferPolicy
from streamproc.capture.factory import SourceFactory, build_source, reads_file
from streamproc.capture.inputs import STDIN, STDIN_ID
from streamproc.capture.urls import default_source_id
from streamproc.config.settings import Settings, SourceSettings
from streamproc.core.errors import ConfigError, InputError
from streamproc.core.frames import SourceState, StatusEvent, StreamInfo
from streamproc.core.locks import OutputLocks
from streamproc.core.stats import PipelineStats
from streamproc.inference.detector import Detector
from streamproc.inference.detectors import open_detector
from streamproc.media.pixels import PixelPlan
from streamproc.pipeline.output_checks import Inputs, check_outputs, check_photo_outputs, input_files
from streamproc.pipeline.run import (
    OpenedSource,
    Pipeline,
    ProgressCallback,
    RunReport,
    SourceReport,
    StatusRelay,
    stats_snapshot,
)
from streamproc.privacy.build import redacting_detector, redaction_stage, redacts
from streamproc.sinks.base import Sink
from streamproc.sinks.kinds import make_sink
from streamproc.stages.base import Stage
from streamproc.stages.track_events import TrackEventStage
from streamproc.stages.tracks import TrackBook, TrackStage

if TYPE_CHECKING:
    from streamproc.stages.classify import ClassifierRunner, InferenceTimer

log = logging.getLogger(__name__)

SinkWrapper = Callable[[int, Sink], Sink]


def build_pipeline(
    settings: Settings,
    *,
    detector: Detector | None = None,
    extra_stages: Sequence[Stage] = (),
    extra_sinks: Sequence[Sink] = (),
    wrap_sink: SinkWrapper | None = None,
    status_listener: Callable[[StatusEvent], None] | None = None,
    source_factory: SourceFactory = build_source,
    inputs: Inputs | None = None,
    lock_outputs: bool = True,
) -> Pipeline:
    """Build and open every part the settings ask for; raises a StreamprocError naming the first
    problem (bad model, unreadable input, unwritable output) before anything runs.

    ``extra_stages`` run after the configured ones, ``extra_sinks`` beside the configured ones;
    ``wrap_sink(index, sink)`` may put each configured sink (``index`` in ``settings.sinks``) inside
    another before it is opened; ``source_factory`` makes each source (a distributed run's shard
    reads part of a photo collection) and ``inputs`` (source id -> files) are the input files the
    outputs are checked against (default: each source's, listed); ``lock_outputs=False`` checks the
    output files without locking them (a distributed camera group shares them with its job's other
    groups)."""
    if not settings.sources:
        raise ConfigError("no input given: name a video file (streamproc run VIDEO.mp4) or list sources")
    stats = PipelineStats()
    # outputs that would destroy an input or each other: refused before anything is opened; the
    # rest are locked until the run ends (a second run writing one of them is refused)
    ids = source_ids(settings.sources)
    check_photo_outputs(settings.sinks, settings.sources, ids)
    if inputs is None:
        inputs = input_files(settings.sources, ids)
    locks = check_outputs(settings.sinks, inputs, lock=lock_outputs)
    with _released_on_error(locks):
        return _build(
            settings,
            stats,
            locks,
            detector,
            extra_stages,
            extra_sinks,
            wrap_sink,
            status_listener,
            source_factory,
        )


def _build(
    settings: Settings,
    stats: PipelineStats,
    locks: OutputLocks,
    detector: Detector | None,
    extra_stages: Sequence[Stage],
    extra_sinks: Sequence[Sink],
    wrap_sink: SinkWrapper | None,
    status_listener: Callable[[StatusEvent], None] | None,
    source_factory: SourceFactory,
) -> Pipeline:
    stages = [*build_stages(settings, stats.inference), *extra_stages]  # bad models: before inputs
    status = StatusRelay(stats, status_listener)
    opened, failed = open_sources(settings, status, source_factory)
    detector = detector or build_detector(settings)
    # MQTT publishes the same numbers as Pipeline.stats_snapshot, before the pipeline exists
    live_stats = functools.partial(stats_snapshot, stats, [o.source for o in opened])
    wrap = wrap_sink or _as_is
    sinks = [wrap(n, make_sink(entry, settings, live_stats)) for n, entry in enumerate(settings.sinks)]
    sinks += extra_sinks
    if settings.snapshots.enabled:
        from streamproc.sinks.snapshots import SnapshotSink  # like the other optional parts: only now

        sinks.append(SnapshotSink(settings.snapshots))
    pixels = PixelPlan.for_consumers([*stages, *sinks])
    for stage in stages:
        stage.open(pixels)
    for sink in sinks:
        sink.open(pixels)
    return Pipeline(
        opened,
        detector,
        stages,
        sinks,
        pixels=pixels,
        stats=stats,
        status=status,
        duration=settings.duration,
        sink_queue_size=settings.sink_queue_size,
        queue_bytes=settings.queue_bytes,
        failed_at_open=failed,
        locks=locks,
    )


@contextmanager
def _released_on_error(locks: OutputLocks) -> Iterator[None]:
    """A build that fails lets go of the output locks it took (and of the files made for them)."""
    try:
        yield
    except BaseException:
        locks.release()
        raise


def _as_is(index: int, sink: Sink) -> Sink:
    return sink


def run_pipeline(settings: Settings, progress: ProgressCallback | None = None) -> RunReport:
    """Build and run a pipeline in one call (library use and tests)."""
    return build_pipeline(settings).run(progress)


def build_detector(settings: Settings) -> Detector:
    """The detector the settings name: a bundled BlazeFace, or a TF.js BlazeFace ``model.json``
    (redacting runs: see :mod:`streamproc.privacy.build`)."""
    if redacts(settings):
        return open_detector(redacting_detector(settings))
    return open_detector(settings.detector)


def build_stages(settings: Settings, on_inference: InferenceTimer | None = None) -> list[Stage]:
    """The analysis stages the settings ask for, in order: the redaction stage when an output is
    redacted, then tracks, best views, face classification and track events, then whole-frame
    classification. Loads and checks the classifier now.

    The classification modules are imported only for runs that classify (~5 ms of start-up)."""
    tracking, classify = settings.tracking, settings.classifier
    faces = classify.enabled and classify.targets in ("faces", "both")
    keyframes = classify.enabled and classify.targets in ("keyframes", "both")
    if not tracking.enabled and (faces or settings.snapshots.enabled):
        raise ConfigError(
            "face classification and snapshots follow face tracks: set tracking.enabled: true, "
            "or classifier.targets: keyframes and snapshots.enabled: false"
        )
    runner = _classifier_runner(settings, on_inference) if classify.enabled else None
    ids = run_ids_for(settings.sources)  # same files, same event ids: a retried task repeats them
    stages: list[Stage] = [redaction_stage(settings)] if redacts(settings) else []
    if tracking.enabled:
        stages += _track_stages(settings, ids, runner if faces else None)
    if keyframes:
        from streamproc.stages.scene import SceneStage

        assert runner is not None
        stages.append(SceneStage(classify.keyframes, runner, ids))
    return stages


def _track_stages(settings: Settings, ids: RunIds, faces: ClassifierRunner | None) -> list[Stage]:
    """The stages that share one track book: the tracker, best views (for snapshots), face
    classification, and last the events that tell what they found."""
    book = TrackBook(settings.tracking, ids)
    stages: list[Stage] = [TrackStage(book)]
    if settings.snapshots.enabled:
        from streamproc.stages.best_views import BestViewStage

        stages.append(BestViewStage(book, settings.snapshots))
    if faces is not None:
        from streamproc.stages.faces import FaceClassification, FaceClassStage

        rules = settings.classifier.faces
        stages.append(FaceClassStage(book, FaceClassification(rules, rules.margin, faces)))
    return [*stages, TrackEventStage(book)]


def run_ids_for(sources: Sequence[SourceSettings]) -> RunIds:
    """Ids named after the inputs for a run over recorded files (not replayed as live), else fresh."""
    recorded = bool(sources) and all(
        reads_file(source.url) and not (source.realtime or source.loop) for source in sources
    )
    return RunIds(files_run_id([source.url for source in sources]) if recorded else None)


def _classifier_runner(settings: Settings, on_inference: InferenceTimer | None) -> ClassifierRunner:
    from streamproc.inference.classifiers import open_classifier
    from streamproc.inference.models import ModelRegistry
    from streamproc.stages.classify import ClassifierRunner

    classifier = open_classifier(settings.classifier, ModelRegistry.load(settings.models_dir))
    width, height = classifier.input_size
    log.info(
        "classifying %s with %s (%dx%d, %s)",
        settings.classifier.targets,
        classifier.name,
        width,
        height,
        classifier.model.path,
    )
    return ClassifierRunner(classifier, on_inference)


def open_sources(
    settings: Settings, status: StatusRelay, source_factory: SourceFactory = build_source
) -> tuple[list[OpenedSource], list[SourceReport]]:
    """Open every input. With one input its error is the run's; with several, a bad one is
    reported and the others go on (an error only when none opens)."""
    opened: list[OpenedSource] = []
    failed: list[SourceReport] = []
    single = len(settings.sources) == 1
    for source_settings, source_id in zip(settings.sources, source_ids(settings.sources), strict=True):
        source = source_factory(settings, source_settings, source_id, status)
        try:
            info = source.open()
        except InputError as exc:
            if single:
                raise
            log.error("source %s: %s (other sources continue)", source_id, exc)
            status(StatusEvent(source_id, SourceState.FAILED, str(exc), time.time()))
            failed.append(
                SourceReport(
                    source_id, source.url, SourceState.FAILED.value, error=str(exc), live=source.live
                )
            )
            continue
        policy = buffer_policy(source_settings, info)
        opened.append(OpenedSource(source, info, policy, source_settings.buffer_size))
    if not opened:
        raise InputError("no input could be opened: " + "; ".join(r.error or "" for r in failed))
    return opened, failed


def source_ids(sources: Sequence[SourceSettings]) -> list[str]:
    """The id each source will have, in order (as :func:`open_sources` gives them)."""
    ids: list[str] = []
    for source in sources:
        ids.append(source_id_for(source, set(ids)))
    return ids


def source_id_for(settings: SourceSettings, taken: set[str]) -> str:
    """A unique, readable id: the configured one, else one from the url (numbered on clashes)."""
    if settings.id:
        if settings.id in taken:
            raise ConfigError(f"source id '{settings.id}' is used twice: give each source its own id")
        return settings.id
    base = STDIN_ID if settings.url == STDIN else default_source_id(settings.url)
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def buffer_policy(settings: SourceSettings, info: StreamInfo) -> BufferPolicy:
    if settings.buffer_policy == "auto":
        return BufferPolicy.DROP_OLDEST if info.live else BufferPolicy.BLOCK
    return BufferPolicy(settings.buffer_policy)


__all__ = ["build_pipeline", "build_stages", "open_sources", "run_pipeline"]
