"""Readiness: every enabled source is streaming or has finished without error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamproc.frames import SourceState

READY_STATES = (SourceState.STREAMING.value, SourceState.STOPPED.value)


def readiness(sources: Mapping[str, Mapping[str, Any]]) -> tuple[bool, list[str]]:
    """(ready, reasons it is not) from :meth:`Pipeline.sources_snapshot`."""
    if not sources:
        return False, ["no source is open yet"]
    reasons = []
    for source_id, source in sources.items():
        if source["state"] not in READY_STATES or source["error"]:
            error = f": {source['error']}" if source["error"] else ""
            reasons.append(f"source {source_id} is {source['state']}{error}")
    return not reasons, reasons
