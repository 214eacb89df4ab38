"""JSON Lines sink: one JSON object per processed frame and one per event, appended and flushed
(to standard output when the path is ``-``).

Only whole lines reach the file (see streamproc.sinks.linefile). When writing fails (disk full), a
run with live sources keeps retrying with backoff, meanwhile reported by ``problem`` (and /readyz),
and resumes where it stopped; once the run is stopping it tries for ``shutdown_grace`` seconds at
most, then counts what it could not write and fails (exit code 1); a file run fails the sink at once.
A reader of standard output that goes away (``| head``) ends the sink quietly (``finished``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from streamproc.config.settings import SHUTDOWN_GRACE_S, JsonlSinkSettings
from streamproc.core import rounding
from streamproc.core.atomic_files import discard_if_empty, is_stream, partial_path
from streamproc.core.errors import OutputError
from streamproc.core.events import Event
from streamproc.core.frames import FrameResult, SourceState, StatusEvent
from streamproc.media.pixels import PixelPlan
from streamproc.sinks.base import Sink, ensure_writable_file, one_file, source_path
from streamproc.sinks.linefile import STDOUT, LineFile, StdoutLines
from streamproc.sinks.records import frame_record, status_record
from streamproc.sinks.retry import Retry

log = logging.getLogger(__name__)

NO_FACES = "no faces (include_empty: false)"
GRACE_OVER = "shutdown grace over"


def record_line(record: dict[str, Any]) -> bytes:
    """One record as the line the sink writes."""
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


class JsonlSink(Sink):
    """Appends records to one file (or one per source with '{source}' in the path)."""

    def __init__(self, settings: JsonlSinkSettings, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        self.settings = settings
        self.name = f"jsonl:{settings.path}"
        self._retry = Retry(grace_s)
        self._unwritten: Counter[Path] = Counter()  # records given up on at shutdown, per file
        self._files: dict[Path, LineFile | StdoutLines] = {}
        self._stdout: StdoutLines | None = None
        self._live = False
        self._failed = False
        self._finished: list[tuple[Path, Path]] = []
        self._written = 0  # frame records
        self._skipped: Counter[str] = Counter()  # frames without a record, by reason

    @property
    def problem(self) -> str | None:
        """Why records are not being written right now (a live run retrying after a write error)."""
        return self._retry.problem

    @property
    def finished(self) -> bool:
        """Writing to standard output, whose reader went away (``| head``): nothing more to do."""
        return self._stdout is not None and self._stdout.reader_gone

    def stopping(self) -> None:
        self._retry.stop()
        if self._retry.problem:
            log.warning(
                "stopping: %s; trying for %g s more (shutdown_grace), then what is left is not"
                " written; a second Ctrl-C stops at once",
                self._retry.reason,
                self._retry.grace_s,
            )

    def open(self, pixels: PixelPlan) -> None:
        if self.settings.path == STDOUT:
            self._files[STDOUT] = self._stdout = StdoutLines()
        elif one_file(self.settings.path):
            ensure_writable_file(self._written_path(self.settings.path), "events file")

    @property
    def written(self) -> int:
        return self._written

    @property
    def not_written(self) -> Counter[str]:
        return self._skipped

    def handle(self, result: FrameResult) -> None:
        self._live = self._live or result.frame.stream.live
        if not self.settings.include_empty and not len(result.detections):
            self._skipped[NO_FACES] += 1
            return
        if self._write(result.frame.source_id, frame_record(result)):
            self._written += 1
        else:
            self._skipped[GRACE_OVER] += 1

    def handle_summary(self, sinks: Mapping[str, Mapping[str, Any]]) -> None:
        """The last line of each file: every sink's frames received, written and not written (why)."""
        record = {"type": "summary", "wall_time": rounding.seconds(time.time()), "sinks": sinks}
        paths = list(self._files) or ([self.settings.path] if one_file(self.settings.path) else [])
        for path in paths:
            self._write_path(path, record)

    def handle_events(self, events: Sequence[Event]) -> None:
        """Each event as its own line: the same object MQTT publishes on {prefix}/events."""
        if self.settings.events:
            for event in events:
                self._write(event.source_id, event.to_dict())

    def handle_status(self, event: StatusEvent) -> None:
        """A source's state change (a StatusEvent) as one line, with its picture size once known."""
        # only cameras connect: a camera run whose disk is full from the start retries too
        self._live = self._live or event.state in (SourceState.CONNECTING, SourceState.RECONNECTING)
        if self.settings.events:
            self._write(event.source_id, status_record(event))

    @property
    def finished_outputs(self) -> list[tuple[Path, Path]]:
        return self._finished

    def _written_path(self, path: Path) -> Path:
        """Replaced files are written aside until the run ends well; devices and pipes in place."""
        return partial_path(path) if self.settings.existing == "replace" and not is_stream(path) else path

    def _write(self, source_id: str, record: dict[str, Any]) -> bool:
        """Write one record to the source's file; False when it was given up on (shutdown grace)."""
        return self._write_path(source_path(self.settings.path, source_id), record)

    def _write_path(self, path: Path, record: dict[str, Any]) -> bool:
        if self._unwritten:  # gave up at shutdown: the file keeps the whole lines it has
            self._unwritten[self._written_path(path)] += 1
            return False
        line = record_line(record)
        while True:
            try:
                self._write_line(path, line)
            except OSError as exc:
                problem = f"cannot write events file {path}: {exc.strerror or exc}"
                if self._live and self._retry.out_of_grace:
                    self._failed = True  # a replaced file is not committed
                    self._unwritten[self._written_path(path)] += 1
                    return False
                if not self._live or self._retry.exhausted:
                    self._failed = True
                    raise OutputError(problem) from None
                # live runs wait and try again (the sink's queue drops frames meanwhile, counted)
                delay = self._retry.failed(problem)
                log.warning("%s; trying again in %g s (live run)", problem, delay)
                self._retry.wait(delay)
                continue
            if self._retry.succeeded():
                log.warning("events file %s: writing again", path)
            return True

    def _write_line(self, path: Path, line: bytes) -> None:
        stream = self._files.get(path)
        if stream is None:
            written = self._written_path(path)
            ensure_writable_file(written, "events file")
            stream = self._files[path] = LineFile(written)
        stream.write(line)

    def close(self) -> None:
        for path, stream in self._files.items():
            stream.close()
            if stream.path != path and not self._failed:  # written aside: the run moves it over path
                self._finished.append((stream.path, path))
        if not self._files and one_file(self.settings.path):
            discard_if_empty(self._written_path(self.settings.path))  # made by open(); nothing came
        self._files.clear()
        if self._unwritten:
            raise OutputError(self._retry.gave_up(self._unwritten, "records"))
