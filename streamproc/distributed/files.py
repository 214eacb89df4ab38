"""Files as Ray tasks: one task per input file, retried when its worker dies.

Each task runs the ordinary one-file pipeline (``run_pipeline``) on its worker. Settings travel as
``model_dump()`` (secrets intact: ``mode="json"`` would mask them) and are validated again there.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.config.settings import Settings
from streamproc.core.errors import StreamprocError
from streamproc.distributed.groups import with_ids
from streamproc.distributed.outputs import (
    check_per_file,
    collect,
    commit,
    complete,
    discard,
    staged,
    write_returned,
)
from streamproc.distributed.progress import (
    REPORT_EVERY_S,
    JobBar,
    ProgressBoard,
    ProgressListener,
    Reporter,
    frame_count,
)
from streamproc.distributed.worker_logs import driver_level, setup_worker_logging
from streamproc.pipeline.build import run_pipeline

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
    board.started.remote(index, os.getpid(), os.uname().nodename)
    outcome = FileOutcome(index, source_id, source.url)
    returned = settings.distributed.outputs == "driver"
    folder = Path(tempfile.mkdtemp(prefix="streamproc-")) if returned else None
    run_settings, renames = staged(settings, source_id, folder)
    reporter = Reporter(board, index)
    try:
        report = run_pipeline(run_settings, progress=reporter)
        board.frames.remote(index, reporter.done)
        outcome.frames, outcome.seconds = report.frames_processed, report.seconds
        if not report.ok:  # outputs appear whole or not at all
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
    log.info("%s: %d frames in %.1f s", source_id, outcome.frames, outcome.seconds)
    return outcome


def run_files(
    ray: Any,
    settings: Settings,
    stop: threading.Event,
    resume: bool = False,
    listener: ProgressListener | None = None,
) -> FilesReport:
    """Every input file as a task on the connected Ray; returns when all are done or failed. After
    ``stop`` is set, files not started yet are left out (reported) and running ones finish."""
    check_per_file(settings)
    report = FilesReport()
    jobs: dict[int, Settings] = {}
    for index, source in enumerate(with_ids(settings.sources)):
        one = settings.model_copy(update={"sources": [source]})
        if resume and complete(one, source.id or ""):
            log.info("%s: outputs complete, skipped (--resume)", source.id)
            report.files.append(FileOutcome(index, source.id or "", source.url, skipped=True))
        else:
            jobs[index] = one
    started = time.perf_counter()
    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    task = ray.remote(num_cpus=1, max_retries=settings.distributed.max_retries)(process_file)
    total = sum(frame_count(one.sources[0].url) for one in jobs.values())
    waiting = sorted(jobs)
    limit = settings.workers or len(jobs)  # with --cluster, --workers caps the files in flight
    running: dict[Any, int] = {}
    bar = JobBar(total, len(jobs), settings.progress)
    with bar:
        while waiting or running:
            while waiting and stop.is_set():
                index = waiting.pop(0)
                source = jobs[index].sources[0]
                report.files.append(FileOutcome(index, source.id or "", source.url, error="stopped"))
            while waiting and len(running) < limit:
                index = waiting.pop(0)
                running[task.remote(jobs[index].model_dump(), index, board, driver_level())] = index
            done, _ = ray.wait(list(running), num_returns=1, timeout=REPORT_EVERY_S) if running else ([], [])
            for ref in done:
                index = running.pop(ref)
                report.files.append(_outcome(ray, ref, index, jobs[index]))
            progress = ray.get(board.snapshot.remote())
            frames = sum(entry.frames for entry in progress.values())
            bar.show(frames, len(jobs) - len(waiting) - len(running))
            if listener is not None:
                listener(progress)
    report.seconds = time.perf_counter() - started
    report.files.sort(key=lambda outcome: outcome.index)
    return report


def _outcome(ray: Any, ref: Any, index: int, settings: Settings) -> FileOutcome:
    """The task's result, or a failed outcome when its workers kept dying or it raised a bug."""
    source = settings.sources[0]
    try:
        outcome: FileOutcome = ray.get(ref)
        write_returned(outcome.outputs)
        outcome.outputs = {}
        return outcome
    except ray.exceptions.RayTaskError as exc:  # a bug: raised in the task, not retried
        log.debug("task of %s failed", source.id, exc_info=True)
        error = f"crashed: {type(exc.cause).__name__}: {exc.cause}"
    except ray.exceptions.RayError as exc:  # its workers kept dying
        log.debug("task of %s failed", source.id, exc_info=True)
        error = f"worker lost {settings.distributed.max_retries + 1} times: {type(exc).__name__}"
    return FileOutcome(index, source.id or "", source.url, error=error)
