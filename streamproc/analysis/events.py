"""Making events: ids unique across sources and runs, and a track's event from its current state.
The event records themselves are in :mod:`streamproc.core.events`."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from typing import Any

from streamproc.analysis.tracking import Track
from streamproc.core.events import Moment, TrackEvent, TrackEventType


class RunIds:
    """Ids unique across sources and live runs: ``<run>-<n>`` for tracks, ``<track>.<seq>`` for events.

    The run part is the start time (UTC, to the second) plus a random suffix, so ids sort by time
    and two processes started in the same second still differ. A run over files only is named after
    them instead (:func:`files_run_id`): running the same files again gives the same ids.
    """

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)
        self._tracks = 0
        self._scenes = 0

    def track_id(self) -> str:
        self._tracks += 1
        return f"{self.run_id}-{self._tracks}"

    def scene_id(self) -> str:
        self._scenes += 1
        return f"{self.run_id}-s{self._scenes}"


def files_run_id(paths: list[str]) -> str | None:
    """A run id from the inputs' identity (absolute path, size, mtime), so that a file processed
    again (a retried task of a distributed run) raises the same event ids; None when an input is not
    a readable file. The time part is the newest input's mtime, so ids still sort roughly by time."""
    identity = hashlib.sha256()
    newest = 0.0
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            return None
        # the name as the file system holds it: also names that are not UTF-8 (cam\xe9ra.mp4)
        name = os.fsencode(os.path.abspath(path))
        identity.update(name + f"\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        newest = max(newest, info.st_mtime)
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(newest)) + "-f" + identity.hexdigest()[:8]


def track_event(
    kind: TrackEventType,
    track: Track,
    seq: int,
    source_id: str,
    at: Moment,
    size: tuple[int, int],
    **state: Any,
) -> TrackEvent:
    """A TrackEvent from a confirmed track's current state."""
    assert track.track_id is not None and track.best is not None, "only confirmed tracks raise events"
    return TrackEvent(
        type=kind,
        event_id=f"{track.track_id}.{seq}",
        seq=seq,
        source_id=source_id,
        track_id=track.track_id,
        at=at,
        width=size[0],
        height=size[1],
        start=track.first.at,
        last=track.last,
        best=track.best,
        top_score=track.top_score,
        **state,
    )
