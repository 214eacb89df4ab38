"""A file's task: the ordinary one-file pipeline (``run_pipeline``) on a worker, retried when the
worker dies, its outputs under temporary names until it is done (the job: :mod:`.jobs`).

Settings travel as ``model_dump()`` (secrets intact: ``mode="json"`` would mask them) and are
validated again there.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.capture.factory import SourceFactory, build_source
from streamproc.config.settings import Settings
from streamproc.core.errors import StreamprocError
from streamproc.distributed.outputs import collect, commit, discard, file_template, staged
from streamproc.distributed.progress import Reporter
from streamproc.distributed.worker_logs import setup_worker_logging
from streamproc.pipeline.build import SinkWrapper, build_pipeline
from streamproc.pipeline.output_checks import Inputs
from streamproc.pipeline.run import RunReport
from streamproc.sinks.base import Sink

log = logging.getLogger(__name__)


@dataclass
class FileOutcome:
    """What happened to one input file."""

    index: int
    source_id: str
    url: str
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False  # --resume found its outputs complete
    broken: list[str] = field(default_factory=list)  # photos: names of those that could not be read
    outputs: dict[str, bytes] = field(default_factory=dict, repr=False)  # outputs: driver


@dataclass
class FilesReport:
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def frames_processed(self) -> int:
        return sum(outcome.frames for outcome in self.files)

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return all(outcome.error is None for outcome in self.files)

    def problems(self) -> list[str]:
        return [f"{outcome.source_id}: {outcome.error}" for outcome in self.files if outcome.error]


def process_file(data: dict[str, Any], index: int, board: Any, level: int) -> FileOutcome:
    """The task body, run on a worker: one file through the pipeline, outputs renamed when whole."""
    settings = Settings.model_validate(data)
    source = settings.sources[0]
    source_id = source.id or ""
    setup_worker_logging(level, f"file {source_id}")
    outcome = FileOutcome(index, source_id, source.url)
    run_staged(settings, outcome, board)
    return outcome


def run_staged(
    settings: Settings,
    outcome: FileOutcome,
    board: Any,
    finals: list[Path] | None = None,
    accept: Callable[[RunReport], bool] = lambda report: report.ok,
    source_factory: SourceFactory = build_source,
    inputs: Inputs | None = None,
) -> None:
    """Run the task's pipeline with its file outputs under temporary names, and make them final
    (``finals``, else the sinks' own paths) when ``accept`` says the run went well; the rest goes
    into ``outcome``."""
    board.started.remote(outcome.index, os.getpid(), os.uname().nodename)
    returned = settings.distributed.outputs == "driver"
    folder = Path(tempfile.mkdtemp(prefix="streamproc-")) if returned else None
    run_settings, renames = staged(settings, outcome.source_id, folder, finals)
    reporter = Reporter(board, outcome.index)
    try:
        pipeline = build_pipeline(
            run_settings,
            wrap_sink=configured_names(settings, run_settings),
            source_factory=source_factory,
            inputs=inputs,
        )
        report = pipeline.run(reporter)
        board.frames.remote(outcome.index, reporter.done)
        outcome.frames, outcome.seconds = report.frames_processed, report.seconds
        if not accept(report):  # outputs appear whole or not at all
            outcome.error = "; ".join(report.problems())
        elif folder is not None:
            outcome.outputs = collect(renames)
        else:
            commit(renames)
    except StreamprocError as exc:
        outcome.error = str(exc)
    finally:
        discard(renames)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    log.info("%s: %d frames in %.1f s", outcome.source_id, outcome.frames, outcome.seconds)


def configured_names(configured: Settings, staged: Settings) -> SinkWrapper:
    """Staged file sinks keep the names of the configured ones, so the run's numbers and the summary
    record ending each file say ``jsonl:out/{source}.jsonl``, not the temporary path."""

    def wrap(index: int, sink: Sink) -> Sink:
        was, now = file_template(configured.sinks[index]), file_template(staged.sinks[index])
        if was is not None and now is not None:
            sink.name = sink.name.replace(str(now), str(was))
        return sink

    return wrap
