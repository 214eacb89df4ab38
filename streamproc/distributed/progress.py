"""One progress view over a whole distributed file job: workers report, the driver shows one bar.

:class:`ProgressBoard` runs as a small Ray actor (no CPU reserved). Workers *set* the frames done
on their file rather than adding to a total, so a retried file starts its count over instead of
counting its frames twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from streamproc.cli.progress import ProgressBar

REPORT_EVERY_S = 0.5


@dataclass
class FileProgress:
    frames: int = 0
    pid: int = 0
    node: str = ""
    attempts: int = 0


class ProgressBoard:
    """Frames done per file, and which worker process has it (tests use the pid to kill it)."""

    def __init__(self) -> None:
        self._files: dict[int, FileProgress] = {}

    def started(self, index: int, pid: int, node: str) -> None:
        entry = self._files.setdefault(index, FileProgress())
        entry.frames, entry.pid, entry.node = 0, pid, node
        entry.attempts += 1

    def frames(self, index: int, done: int) -> None:
        self._files.setdefault(index, FileProgress()).frames = done

    def snapshot(self) -> dict[int, FileProgress]:
        return dict(self._files)


class Reporter:
    """In the worker: the pipeline's progress callback, passing the count on twice a second."""

    def __init__(self, board: Any, index: int) -> None:
        self._board, self._index = board, index
        self.done = 0
        self._sent_at = 0.0

    def __call__(self, _result: object) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self._sent_at >= REPORT_EVERY_S:
            self._sent_at = now
            self._board.frames.remote(self._index, self.done)  # fire and forget


def frame_count(url: str) -> int:
    """Frames in a video file as its container says (0 when unknown or unreadable)."""
    if not Path(url).is_file():
        return 0
    try:
        with av.open(url) as container:
            return int(container.streams.video[0].frames or 0)
    except (av.FFmpegError, IndexError, OSError):
        return 0


class JobBar(ProgressBar):
    """The file run's bar, fed with totals: frames over all files and photos, tasks (files and photo
    shards) done, ETA."""

    def __init__(self, total_frames: int, tasks: int, enabled: bool = True) -> None:
        super().__init__(total_frames or None, enabled)
        self._tasks = tasks

    def show(self, frames: int, tasks_done: int) -> None:
        if self._bar is not None:
            self._bar.update(max(frames - self._bar.n, 0))
            self._bar.set_postfix_str(f"tasks {tasks_done}/{self._tasks}")


ProgressListener = Callable[[dict[int, FileProgress]], None]
