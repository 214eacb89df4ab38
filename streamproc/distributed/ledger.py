"""Tracks that die with their worker still get exactly one ``end`` event.

:class:`TrackRegistry` is a small actor beside the driver (on the driver's node, so it outlives any
worker node). Each output sink of a group's worker (JSON Lines, MQTT) is wrapped in
:class:`ReportingSink`, which runs in that sink's thread and

- before the sink writes a ``new``, registers the track for this output and waits for the
  registry's answer, so a track an output has announced is always known beside the driver, however
  soon the worker dies (outputs lag each other: each registers for itself);
- after the sink wrote an ``end``, tells the registry (fire and forget) that this output has it.

When a worker is lost, the driver takes its incarnation's tracks from the registry and writes, to
each output that announced a track but has not written its ``end``, one ``end`` with
``end_reason: worker_lost``. A worker killed between a sink's registration and its write of the
``new`` (or between its write of an ``end`` and the message leaving the process) gives that output
an ``end`` too many: windows of about a millisecond. :class:`TrackLedger` keeps each
open track's latest state on the worker; the driver's polls carry it, so a lost end tells where
the track was last seen.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamproc.core.events import Event
from streamproc.core.frames import FrameResult
from streamproc.sinks.base import ForwardingSink, Sink


class TrackLedger(Sink):
    """The latest ``new``/``update`` of each track that has not ended yet, as published."""

    name = "track-ledger"

    def __init__(self) -> None:
        self._open: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def handle(self, result: FrameResult) -> None:
        """Frames say nothing the ledger keeps."""

    def handle_events(self, events: Sequence[Event]) -> None:
        with self._lock:
            for event in events:
                if event.type in ("new", "update"):
                    self._open[event.track_id] = event.to_dict()
                elif event.type == "end":
                    self._open.pop(event.track_id, None)

    def open_tracks(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._open)


@dataclass
class OpenTrack:
    """A track some output announced: its ``new`` event, and the outputs that announced it and still
    owe its ``end``."""

    new: dict[str, Any]
    owing: set[int]


class TrackRegistry:
    """The actor beside the driver: open tracks per group and worker incarnation."""

    def __init__(self) -> None:
        self._tracks: dict[str, dict[str, dict[str, OpenTrack]]] = {}  # group -> incarnation -> id

    def opened(self, group: str, incarnation: str, output: int, event: dict[str, Any]) -> None:
        """Output ``output`` (its index in settings.sinks) is about to announce the track."""
        tracks = self._tracks.setdefault(group, {}).setdefault(incarnation, {})
        tracks.setdefault(str(event["track_id"]), OpenTrack(event, set())).owing.add(output)

    def ended(self, group: str, incarnation: str, output: int, track_ids: list[str]) -> None:
        tracks = self._tracks.get(group, {}).get(incarnation, {})
        for track_id in track_ids:
            track = tracks.get(track_id)
            if track is not None:
                track.owing.discard(output)
                if not track.owing:
                    del tracks[track_id]

    def take(self, group: str, lost: str | None, keep: str | None) -> dict[str, OpenTrack]:
        """Forget and return the open tracks of the group's incarnation ``lost``, or of every
        incarnation but ``keep`` when ``lost`` is None."""
        incarnations = self._tracks.get(group, {})
        gone = [lost] if lost is not None else [name for name in incarnations if name != keep]
        taken: dict[str, OpenTrack] = {}
        for name in gone:
            taken.update(incarnations.pop(name, {}))
        return taken


class ReportingSink(ForwardingSink):
    """An output sink of a group's worker, reporting its tracks' ``new`` and ``end`` to the registry."""

    def __init__(self, inner: Sink, output: int, registry: Any, group: str, incarnation: str) -> None:
        super().__init__(inner)
        self._where = (group, incarnation)
        self._output, self._registry = output, registry
        self._known: set[str] = set()  # tracks this sink saw registered

    def handle_events(self, events: Sequence[Event]) -> None:
        import ray  # inside a worker: Ray is there

        fresh = [e for e in events if e.type == "new" and e.track_id not in self._known]
        if fresh:  # wait for the answers: the registry must know a track before anyone hears of it
            ray.get([self._registry.opened.remote(*self._where, self._output, e.to_dict()) for e in fresh])
            self._known.update(e.track_id for e in fresh)
        self.inner.handle_events(events)
        ended = [e.track_id for e in events if e.type == "end"]
        if ended:
            self._registry.ended.remote(*self._where, self._output, ended)
            self._known.difference_update(ended)
