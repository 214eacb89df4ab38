"""Tracks that die with their worker still get their ``end`` event.

In each group's worker, :class:`TrackLedger` (a sink) keeps the last event of every open track. The
driver reads it on each poll; when the worker is lost it sends, for each track it last saw open, an
``end`` with ``end_reason: worker_lost`` to the JSON Lines and MQTT outputs. A track confirmed less
than one poll before the loss is not known to the driver and gets no ``end``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamproc.frames import FrameResult
from streamproc.sinks.base import Sink


class TrackLedger(Sink):
    """The latest ``new``/``update`` of each track that has not ended yet, as published."""

    name = "track-ledger"

    def __init__(self) -> None:
        self._open: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def handle(self, result: FrameResult) -> None:
        """Frames say nothing the ledger keeps."""

    def handle_events(self, events: Sequence[Any]) -> None:
        with self._lock:
            for event in events:
                if event.type in ("new", "update"):
                    self._open[event.track_id] = event.to_dict()
                elif event.type == "end":
                    self._open.pop(event.track_id, None)

    def open_tracks(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._open)


@dataclass(frozen=True)
class LostEnd:
    """The ``end`` of a track whose worker died: its last known state, ended there."""

    last: dict[str, Any]

    @property
    def source_id(self) -> str:
        return str(self.last["source"])

    @property
    def track_id(self) -> str:
        return str(self.last["track_id"])

    type = "end"

    def to_dict(self) -> dict[str, Any]:
        seq = int(self.last["seq"]) + 1
        seen = {key: self.last[key] for key in ("frame", "pts", "wall_time")}
        return {
            **self.last,
            "type": "end",
            "event_id": f"{self.track_id}.{seq}",
            "seq": seq,
            "end": seen,
            "changes": [],
            "end_reason": "worker_lost",
        }
