"""A file job on Ray: each video file, and each shard of a photo collection, is one task, retried
when its worker dies; one progress bar for the job and one outcome per input.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from streamproc.capture.urls import SourceKind, source_kind
from streamproc.config.settings import Settings
from streamproc.core.errors import InputError
from streamproc.distributed import photos
from streamproc.distributed.files import FileOutcome, FilesReport, process_file
from streamproc.distributed.groups import with_ids
from streamproc.distributed.outputs import check_per_file, complete, write_returned
from streamproc.distributed.progress import (
    REPORT_EVERY_S,
    JobBar,
    ProgressBoard,
    ProgressListener,
    frame_count,
)
from streamproc.distributed.worker_logs import driver_level

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One file, or one shard of a photo collection (``settings`` holds its one source)."""

    index: int
    settings: Settings
    shard: photos.Shard | None = None

    @property
    def label(self) -> str:
        return self.shard.label if self.shard else self.settings.sources[0].id or ""

    def expected_frames(self) -> int:
        return len(self.shard.files) if self.shard else frame_count(self.settings.sources[0].url)

    def failed(self, error: str) -> FileOutcome:
        source = self.settings.sources[0]
        return FileOutcome(self.index, source.id or "", source.url, error=error)


@dataclass
class Plan:
    """What the job runs: tasks, the shards of each collection, and outcomes known before it starts."""

    tasks: list[Task]
    collections: list[list[Task]]
    known: dict[int, FileOutcome]


def plan_job(settings: Settings, resume: bool, per_shard: int) -> Plan:
    plan, index = Plan([], [], {}), 0
    for source in with_ids(settings.sources):
        one = settings.model_copy(update={"sources": [source]})
        if resume and complete(one, source.id or ""):
            log.info("%s: outputs complete, skipped (--resume)", source.id)
            plan.known[index] = FileOutcome(index, source.id or "", source.url, skipped=True)
        elif source_kind(source.url) is SourceKind.IMAGES:
            index += _plan_collection(plan, one, index, resume, per_shard) - 1
        else:
            plan.tasks.append(Task(index, one))
        index += 1
    return plan


def _plan_collection(plan: Plan, one: Settings, index: int, resume: bool, per_shard: int) -> int:
    """Plan the collection's shards as tasks from ``index`` on (skipping those done); the number of
    indexes taken."""
    try:
        shards = photos.plan_shards(one.sources[0], per_shard)
    except InputError as exc:
        plan.known[index] = Task(index, one).failed(str(exc))
        return 1
    if not shards:
        plan.known[index] = Task(index, one).failed(f"input {one.sources[0].url} names no image")
        return 1
    tasks = [Task(index + number, one, shard) for number, shard in enumerate(shards)]
    plan.collections.append(tasks)
    folder = photos.shard_folder(one)
    if folder is not None and one.distributed.outputs == "shared":
        folder.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        assert task.shard is not None
        done = photos.finished(one, task.shard, task.index) if resume else None
        if done is None:
            plan.tasks.append(task)
        else:
            plan.known[task.index] = done
    return len(tasks)


def run_files(
    ray: Any,
    settings: Settings,
    stop: threading.Event,
    resume: bool = False,
    listener: ProgressListener | None = None,
) -> FilesReport:
    """Every input file and photo shard as a task on the connected Ray; returns when all are done or
    failed. After ``stop`` is set, tasks not started yet are left out (reported) and running ones
    finish."""
    check_per_file(settings)
    inputs = with_ids(settings.sources)
    if any(source_kind(source.url) is SourceKind.IMAGES for source in inputs):
        photos.check_outputs(settings)
    started = time.perf_counter()
    plan = plan_job(settings, resume, settings.distributed.photos_per_shard)
    outcomes = {**plan.known, **_run_tasks(ray, settings, plan.tasks, stop, listener)}
    report = FilesReport(seconds=time.perf_counter() - started)
    in_collections = {task.index for tasks in plan.collections for task in tasks}
    report.files = [outcome for index, outcome in outcomes.items() if index not in in_collections]
    for tasks in plan.collections:
        shards = [task.shard for task in tasks if task.shard is not None]
        found = [outcomes[task.index] for task in tasks]
        report.files.append(photos.join(tasks[0].settings, shards, found, report.seconds))
    report.files.sort(key=lambda outcome: outcome.index)
    return report


def _run_tasks(
    ray: Any, settings: Settings, tasks: list[Task], stop: threading.Event, listener: ProgressListener | None
) -> dict[int, FileOutcome]:
    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    options = {"num_cpus": 1, "max_retries": settings.distributed.max_retries}
    file_task, shard_task = ray.remote(**options)(process_file), ray.remote(**options)(photos.process_shard)
    waiting, running, outcomes = deque(tasks), dict[Any, Task](), dict[int, FileOutcome]()
    # with --cluster, --workers caps the tasks in flight; here, one more per worker waits queued in
    # Ray, so a worker starts its next task without waiting for the driver's loop
    limit = (settings.workers or len(tasks)) * (2 if settings.distributed.cluster is None else 1)
    bar = JobBar(sum(task.expected_frames() for task in tasks), len(tasks), settings.progress)
    with bar:
        while waiting or running:
            while waiting and stop.is_set():
                task = waiting.popleft()
                outcomes[task.index] = task.failed("stopped")
            while waiting and len(running) < limit:
                task = waiting.popleft()
                data, level = task.settings.model_dump(), driver_level()
                ref = (
                    shard_task.remote(data, task.shard, task.index, board, level)
                    if task.shard
                    else file_task.remote(data, task.index, board, level)
                )
                running[ref] = task
            done, _ = ray.wait(list(running), num_returns=1, timeout=REPORT_EVERY_S) if running else ([], [])
            for ref in done:
                task = running.pop(ref)
                outcomes[task.index] = _outcome(ray, ref, task)
            progress = ray.get(board.snapshot.remote())
            bar.show(sum(entry.frames for entry in progress.values()), len(outcomes))
            if listener is not None:
                listener(progress)
    return outcomes


def _outcome(ray: Any, ref: Any, task: Task) -> FileOutcome:
    """The task's result (a shard's marked done), or a failed outcome when its workers kept dying
    or it raised a bug."""
    retries = task.settings.distributed.max_retries
    try:
        outcome: FileOutcome = ray.get(ref)
        write_returned(outcome.outputs)
        outcome.outputs = {}
        if task.shard is not None and outcome.error is None:
            photos.mark_done(task.settings, task.shard, outcome)
        return outcome
    except ray.exceptions.RayTaskError as exc:  # a bug: raised in the task, not retried
        log.debug("task of %s failed", task.label, exc_info=True)
        return task.failed(f"crashed: {type(exc.cause).__name__}: {exc.cause}")
    except ray.exceptions.RayError as exc:  # its workers kept dying
        log.debug("task of %s failed", task.label, exc_info=True)
        return task.failed(f"worker lost {retries + 1} times: {type(exc).__name__}")
