"""Readiness, in one place: every enabled source is streaming or has finished without error, and
every sink is writing (none failed, none retrying a failed write)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamproc.core.frames import SourceState
from streamproc.server.view import PipelineView

READY_STATES = (SourceState.STREAMING.value, SourceState.STOPPED.value)


def readiness(view: PipelineView, require_sources: bool = True) -> tuple[bool, list[str]]:
    """(ready, reasons it is not). ``require_sources``: a server meant to run sources is not ready
    before one is open (``streamproc serve`` without sources is)."""
    sources = view.sources_snapshot()
    if not sources and require_sources:
        return False, ["no source is open yet"]
    reasons = []
    for source_id, source in sources.items():
        if source["state"] not in READY_STATES or source["error"]:
            why = source["error"] or source.get("message")  # reconnecting: its last failure
            reasons.append(f"source {source_id} is {source['state']}" + (f": {why}" if why else ""))
    reasons += sink_problems(view.sinks_snapshot())
    return not reasons, reasons


def sink_problems(sinks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A failed sink, or one retrying a failed write (disk full on a live run), with the reason."""
    found = []
    for name, sink in sinks.items():
        if sink.get("error"):
            found.append(f"sink {name} failed: {sink['error']}")
        elif sink.get("problem"):
            found.append(f"sink {name}: {sink['problem']}")
    return found
