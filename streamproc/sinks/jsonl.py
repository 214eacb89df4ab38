"""JSON Lines sink: one JSON object per processed frame and one per event, appended and flushed.

Only whole lines reach the file (see streamproc.sinks.linefile). When writing fails (disk full), a
run with live sources keeps retrying with backoff, meanwhile reported by ``problem`` (and /readyz),
and resumes where it stopped; a file run fails the sink at once (exit code 1).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamproc.config import JsonlSinkSettings
from streamproc.errors import OutputError
from streamproc.files import commit, discard_if_empty, partial_path
from streamproc.frames import FrameResult
from streamproc.pixels import PixelPlan
from streamproc.records import frame_record
from streamproc.sinks.base import Sink, ensure_writable_file, source_path
from streamproc.sinks.linefile import LineFile

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
RETRY_FOR_S = 600.0  # live runs give up (the sink fails) after this long without a successful write


class JsonlSink(Sink):
    """Appends records to one file (or one per source with '{source}' in the path)."""

    def __init__(self, settings: JsonlSinkSettings) -> None:
        self.settings = settings
        self.name = f"jsonl:{settings.path}"
        self.problem: str | None = None  # why records are not being written right now
        self._files: dict[Path, LineFile] = {}
        self._live = False
        self._failed = False

    def open(self, pixels: PixelPlan) -> None:
        if "{source}" not in str(self.settings.path):
            ensure_writable_file(self._written_path(self.settings.path), "events file")

    def handle(self, result: FrameResult) -> None:
        self._live = self._live or result.frame.stream.live
        if not self.settings.include_empty and not len(result.detections):
            return
        self._write(result.frame.source_id, frame_record(result))

    def handle_events(self, events: Sequence[Any]) -> None:
        """Each event as its own line: the same object MQTT publishes on {prefix}/events."""
        if self.settings.events:
            for event in events:
                self._write(event.source_id, event.to_dict())

    def _written_path(self, path: Path) -> Path:
        """Replaced files are written aside until the run ends well."""
        return partial_path(path) if self.settings.existing == "replace" else path

    def _write(self, source_id: str, record: dict[str, Any]) -> None:
        path = source_path(self.settings.path, source_id)
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            self._write_line(path, line)
        except OSError as exc:
            if not self._live:
                self._failed = True
                raise OutputError(f"cannot write events file {path}: {exc.strerror or exc}") from None
            self._retry(path, line, exc)

    def _write_line(self, path: Path, line: bytes) -> None:
        stream = self._files.get(path)
        if stream is None:
            written = self._written_path(path)
            ensure_writable_file(written, "events file")
            stream = self._files[path] = LineFile(written)
        stream.write(line)

    def _retry(self, path: Path, line: bytes, error: OSError) -> None:
        """Live runs: try again with growing delays until the line is written (the sink's queue drops
        frames meanwhile: counted as dropped) or RETRY_FOR_S has passed."""
        delay, deadline = RETRY_FIRST_S, time.monotonic() + RETRY_FOR_S
        self.problem = f"cannot write {path}: {error.strerror or error}; retrying"
        log.warning("events file %s: %s; retrying with backoff (live run)", path, error.strerror or error)
        while True:
            time.sleep(delay)
            try:
                self._write_line(path, line)
            except OSError as exc:
                if time.monotonic() >= deadline:
                    self._failed = True
                    raise OutputError(
                        f"cannot write events file {path}: {exc.strerror or exc} (retried {RETRY_FOR_S:g} s)"
                    ) from None
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            log.warning("events file %s: writing again", path)
            self.problem = None
            return

    def close(self) -> None:
        for path, stream in self._files.items():
            stream.close()
            if self.settings.existing == "replace" and not self._failed:
                commit(stream.path, path)
        if not self._files and "{source}" not in str(self.settings.path):
            discard_if_empty(self._written_path(self.settings.path))  # made by open(); nothing came
        self._files.clear()
