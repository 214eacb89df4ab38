"""Readiness: every enabled source is streaming or has finished without error, and every sink is
writing (none failed, none waiting to retry a failed write)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from streamproc.frames import SourceState

READY_STATES = (SourceState.STREAMING.value, SourceState.STOPPED.value)


class Snapshots(Protocol):
    """What readiness reads from a pipeline."""

    def sources_snapshot(self) -> dict[str, dict[str, Any]]: ...

    def sinks_snapshot(self) -> dict[str, dict[str, Any]]: ...


def pipeline_readiness(pipeline: Snapshots) -> tuple[bool, list[str]]:
    """(ready, reasons it is not) of a running pipeline: what /readyz and the ready metric report."""
    return readiness(pipeline.sources_snapshot(), pipeline.sinks_snapshot())


def readiness(
    sources: Mapping[str, Mapping[str, Any]], sinks: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[bool, list[str]]:
    """(ready, reasons it is not) from :meth:`Pipeline.sources_snapshot` and ``sinks_snapshot``."""
    if not sources:
        return False, ["no source is open yet"]
    reasons = []
    for source_id, source in sources.items():
        if source["state"] not in READY_STATES or source["error"]:
            error = f": {source['error']}" if source["error"] else ""
            reasons.append(f"source {source_id} is {source['state']}{error}")
    for name, sink in (sinks or {}).items():
        if sink.get("error"):
            reasons.append(f"sink {name} failed: {sink['error']}")
        elif sink.get("problem"):
            reasons.append(f"sink {name}: {sink['problem']}")
    return not reasons, reasons
