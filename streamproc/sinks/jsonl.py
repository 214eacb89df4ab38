"""JSON Lines sink: one JSON object per processed frame and one per event, appended and flushed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from streamproc import rounding
from streamproc.config import JsonlSinkSettings
from streamproc.frames import FrameResult, StatusEvent
from streamproc.pixels import PixelPlan
from streamproc.records import frame_record
from streamproc.sinks.base import Sink, ensure_writable_file, source_path


def status_record(event: StatusEvent) -> dict[str, Any]:
    """``{"type": "status", "source", "state", "message", "wall_time", "width", "height"}``."""
    return {
        "type": "status",
        "source": event.source_id,
        "state": event.state.value,
        "message": event.message,
        "wall_time": rounding.seconds(event.wall_time),
        "width": event.width,
        "height": event.height,
    }


class JsonlSink(Sink):
    """Appends records to one file (or one per source with '{source}' in the path)."""

    def __init__(self, settings: JsonlSinkSettings) -> None:
        self.settings = settings
        self.name = f"jsonl:{settings.path}"
        self._files: dict[Path, IO[str]] = {}

    def open(self, pixels: PixelPlan) -> None:
        if "{source}" not in str(self.settings.path):
            ensure_writable_file(self.settings.path, "events file")

    def handle(self, result: FrameResult) -> None:
        if not self.settings.include_empty and not len(result.detections):
            return
        self._write(result.frame.source_id, frame_record(result))

    def handle_events(self, events: Sequence[Any]) -> None:
        """Each event as its own line: the same object MQTT publishes on {prefix}/events."""
        if self.settings.events:
            for event in events:
                self._write(event.source_id, event.to_dict())

    def handle_status(self, event: StatusEvent) -> None:
        """A source's state change (a StatusEvent) as one line, with its picture size once known."""
        if self.settings.events:
            self._write(event.source_id, status_record(event))

    def _write(self, source_id: str, record: dict[str, Any]) -> None:
        path = source_path(self.settings.path, source_id)
        stream = self._files.get(path)
        if stream is None:
            ensure_writable_file(path, "events file")
            stream = self._files[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        stream.flush()

    def close(self) -> None:
        for stream in self._files.values():
            stream.close()
        self._files.clear()
