"""The whole system's numbers from every worker's latest snapshot, for the driver's ``--http``.

:class:`ClusterView` offers what an HTTP server reads from a pipeline (``stats_snapshot``,
``sources_snapshot``, ``sinks_snapshot`` and ``stats.histograms``), so any server can serve it.
Percentiles cannot be merged exactly: the view reports each model's worst worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamproc.core.stats import Histogram

LOST_STATE = "worker_lost"


@dataclass
class WorkerSnapshot:
    """What a group's worker reports on each poll (see cameras.GroupWorker.snapshot)."""

    incarnation: str
    node: str
    pid: int
    stats: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    histograms: dict[str, dict[str, Histogram]] = field(default_factory=dict)
    open_tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: bool = False  # its pipeline is running (False: ended, or could not start)
    problems: list[str] = field(default_factory=list)


def merge_histograms(histograms: Iterable[Histogram]) -> Histogram:
    found = list(histograms)
    counts = [sum(column) for column in zip(*(h.counts for h in found), strict=True)]
    return Histogram(found[0].bounds, tuple(counts), sum(h.count for h in found), sum(h.total for h in found))


def merge_summaries(summaries: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts add up, the mean is weighted, percentiles are the worst worker's."""
    count = sum(s["count"] for s in summaries)
    known = [s for s in summaries if s.get("mean") is not None]
    merged: dict[str, Any] = {"count": count, "mean": None, "p50": None, "p95": None, "p99": None}
    if known and count:
        merged["mean"] = round(sum(s["mean"] * s["count"] for s in known) / count, 3)
        for key in ("p50", "p95", "p99"):
            merged[key] = max(s[key] for s in known)
    return merged


class _MergedStats:
    """``pipeline.stats``'s histogram part, over every worker."""

    def __init__(self, view: ClusterView) -> None:
        self._view = view

    def histograms(self) -> dict[str, dict[str, Histogram]]:
        merged: dict[str, dict[str, Histogram]] = {}
        for kind in ("inference_ms", "latency_ms"):
            parts: dict[str, list[Histogram]] = {}
            for snapshot in self._view.latest():
                for key, histogram in snapshot.histograms.get(kind, {}).items():
                    parts.setdefault(key, []).append(histogram)
            merged[kind] = {key: merge_histograms(found) for key, found in parts.items()}
        return merged


class ClusterView:
    """Latest snapshot per group, and which groups are reachable now."""

    def __init__(self) -> None:
        self.started = time.time()
        self._groups: dict[str, WorkerSnapshot] = {}
        self._alive: dict[str, bool] = {}
        self._restarts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.stats = _MergedStats(self)

    def update(self, group: str, snapshot: WorkerSnapshot) -> bool:
        """Record a poll's answer; True when it comes from a new incarnation of the group's worker."""
        with self._lock:
            previous = self._groups.get(group)
            self._groups[group], self._alive[group] = snapshot, True
            restarted = previous is not None and previous.incarnation != snapshot.incarnation
            self._restarts[group] = self._restarts.get(group, 0) + int(restarted)
            return restarted

    def lost(self, group: str) -> None:
        with self._lock:
            self._alive[group] = False

    def alive(self, group: str) -> bool:
        with self._lock:
            return self._alive.get(group, False)

    def all_lost(self) -> bool:
        """Every group seen so far is unreachable (False while none has answered yet)."""
        with self._lock:
            return bool(self._alive) and not any(self._alive.values())

    def group(self, group: str) -> WorkerSnapshot | None:
        with self._lock:
            return self._groups.get(group)

    def latest(self) -> list[WorkerSnapshot]:
        with self._lock:
            return list(self._groups.values())

    def stats_snapshot(self) -> dict[str, Any]:
        with self._lock:
            groups, alive, restarts = dict(self._groups), dict(self._alive), dict(self._restarts)
        sources: dict[str, Any] = {}
        inference: dict[str, list[Mapping[str, Any]]] = {}
        for snapshot in groups.values():
            sources.update(snapshot.stats.get("sources", {}))
            for model, summary in snapshot.stats.get("inference_ms", {}).items():
                inference.setdefault(model, []).append(summary)
        workers = {
            group: {"alive": alive[group], "node": s.node, "pid": s.pid, "restarts": restarts[group]}
            for group, s in groups.items()
        }
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "sources": sources,
            "inference_ms": {model: merge_summaries(found) for model, found in inference.items()},
            "workers": workers,
        }

    def sources_snapshot(self) -> dict[str, dict[str, Any]]:
        """Every source; those of an unreachable worker show ``worker_lost`` (not ready)."""
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for group, snapshot in self._groups.items():
                for source_id, source in snapshot.sources.items():
                    if self._alive.get(group):
                        found[source_id] = source
                    else:
                        error = f"worker of {group} lost: restarting"
                        found[source_id] = {**source, "state": LOST_STATE, "error": error, "buffered": 0}
        return found

    def sinks_snapshot(self) -> dict[str, dict[str, Any]]:
        """Each worker's sinks, named ``group/sink``."""
        with self._lock:
            return {
                f"{group}/{name}": values
                for group, snapshot in self._groups.items()
                for name, values in snapshot.sinks.items()
            }
