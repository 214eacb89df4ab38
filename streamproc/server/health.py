"""Readiness, in one place: every enabled source is streaming or has finished without error."""

from __future__ import annotations

from streamproc.frames import SourceState
from streamproc.server.view import PipelineView

READY_STATES = (SourceState.STREAMING.value, SourceState.STOPPED.value)


def readiness(view: PipelineView, require_sources: bool = True) -> tuple[bool, list[str]]:
    """(ready, reasons it is not). ``require_sources``: a server meant to run sources is not ready
    before one is open (``streamproc serve`` without sources is)."""
    sources = view.sources_snapshot()
    if not sources:
        return (False, ["no source is open yet"]) if require_sources else (True, [])
    reasons = []
    for source_id, source in sources.items():
        if source["state"] not in READY_STATES or source["error"]:
            error = f": {source['error']}" if source["error"] else ""
            reasons.append(f"source {source_id} is {source['state']}{error}")
    return not reasons, reasons
