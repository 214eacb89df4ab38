"""What the server reads of a pipeline: a narrow, typed view (stats, sources, sinks), so that the
HTTP layer does not depend on the concrete Pipeline class, and a server without sources works."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from streamproc.core.stats import PipelineStats


@runtime_checkable
class PipelineView(Protocol):
    """Read-only snapshots, JSON-ready, safe to call from any thread."""

    stats: PipelineStats  # latency and inference histograms for /metrics

    def stats_snapshot(self) -> dict[str, Any]:
        """Uptime, per-source numbers and timing summaries (see streamproc.core.stats)."""
        ...

    def sources_snapshot(self) -> dict[str, dict[str, Any]]:
        """Per source: url, state, error and buffered frames."""
        ...

    def sinks_snapshot(self) -> dict[str, dict[str, Any]]:
        """Per running sink: queued, handled, dropped, error and backlog."""
        ...


class NoSources:
    """The view of ``streamproc serve`` without sources: the detection API alone."""

    def __init__(self) -> None:
        self.stats = PipelineStats()

    def stats_snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot()

    def sources_snapshot(self) -> dict[str, dict[str, Any]]:
        return {}

    def sinks_snapshot(self) -> dict[str, dict[str, Any]]:
        return {}
