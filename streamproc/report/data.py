"""Reading a run's JSON Lines results for the report, tolerantly.

Two kinds of lines are understood:

- per-frame records, ``{"type": "frame", "source": ..., "frame": 12, "pts": 0.48, "wall_time": ...,
  "faces": [{"box": [...], "score": ..., "track_id": ...}]}`` (``track_id`` once tracking runs);
- track events as streamproc writes them (``streamproc/schemas/event.schema.json``: ``"start"`` and
  ``"end"`` objects with ``pts`` and ``wall_time``, ``"best"``, ``"snapshot": {"path"}``,
  ``"classification": {"top_k": [{"label", "score"}]}``), and looser variants from other tools:
  ``"start_pts"``, ``"end_pts"`` (media seconds), ``"start_time"``, ``"end_time"`` (wall clock),
  ``"snapshot": PATH``, ``"classification": [{"label", "score"}]``.

Every field may be missing; lines that are not JSON objects are skipped and counted. Other record
types (``scene``, status lines...) are ignored.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.core.errors import InputError

log = logging.getLogger(__name__)

TRACK_EVENTS = ("new", "update", "end")


@dataclass
class FrameRow:
    """One processed frame: its index, media time (seconds) and the faces in it."""

    index: int | None
    pts: float | None
    wall_time: float | None
    faces: list[dict[str, Any]]


@dataclass
class SourceRecords:
    """Everything one source left in the results, in file order."""

    source_id: str
    frames: list[FrameRow] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Results:
    paths: list[Path]
    sources: dict[str, SourceRecords]
    skipped_lines: int = 0


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number(record: dict[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` that holds a number."""
    for key in keys:
        if is_number(record.get(key)):
            return float(record[key])
    return None


def source_of(record: dict[str, Any]) -> str:
    return str(record.get("source") or record.get("source_id") or "unknown")


def read_results(paths: list[Path]) -> Results:
    """Parse every line of ``paths``; raises InputError when a file is missing or holds no records."""
    sources: dict[str, SourceRecords] = {}
    skipped = 0
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            raise InputError(f"results file {path} does not exist: check the path") from None
        except OSError as exc:
            raise InputError(f"results file {path} cannot be read: {exc.strerror}") from None
        counts: dict[str, int] = defaultdict(int)
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                skipped += 1
                continue
            kind = _add(sources, record)
            counts[kind] += 1
        if not counts.get("frame") and not counts.get("event"):
            raise InputError(
                f"results file {path} holds no streamproc records (frame lines or track events): "
                "give the JSON Lines file a run wrote (--events)"
            )
    if skipped:
        log.warning("skipped %d line(s) that are not JSON objects", skipped)
    return Results(paths, sources, skipped)


def _add(sources: dict[str, SourceRecords], record: dict[str, Any]) -> str:
    kind = record.get("type", "frame" if "faces" in record else None)
    source_id = source_of(record)
    if kind == "frame":
        faces = record.get("faces")
        index = record.get("frame")
        sources.setdefault(source_id, SourceRecords(source_id)).frames.append(
            FrameRow(
                index=index if isinstance(index, int) else None,
                pts=number(record, "pts"),
                wall_time=number(record, "wall_time"),
                faces=[face for face in faces if isinstance(face, dict)] if isinstance(faces, list) else [],
            )
        )
        return "frame"
    if kind in TRACK_EVENTS and record.get("track_id") is not None:
        sources.setdefault(source_id, SourceRecords(source_id)).events.append(record)
        return "event"
    return "other"
