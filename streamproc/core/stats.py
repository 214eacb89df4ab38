"""Run statistics: per-source frame counts, fps, latency percentiles and per-model inference time.

Counters are updated from several threads; each update takes one small lock. ``snapshot`` returns a
JSON-ready dict that the CLI summary, MQTT stats and the HTTP API all share.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW = 1024  # recent samples kept for percentiles and fps: bounded memory on week-long runs
# upper bounds (ms) of the cumulative histogram buckets exported to Prometheus; lifetime counts
BUCKETS_MS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)


@dataclass(frozen=True)
class Histogram:
    """Lifetime distribution of a measurement in milliseconds: ``counts[i]`` values fell at or
    below ``bounds[i]`` and above the bound before; the extra last count is above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    total: float


@dataclass
class _Recent:
    """The last WINDOW samples of a measurement, plus lifetime count and sum."""

    values: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    count: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))  # last one: +Inf

    def add(self, value: float) -> None:
        self.values.append(value)
        self.count += 1
        self.total += value
        self.buckets[bisect.bisect_left(BUCKETS_MS, value)] += 1

    def histogram(self) -> Histogram:
        return Histogram(BUCKETS_MS, tuple(self.buckets), self.count, self.total)

    def summary(self) -> dict[str, float | int | None]:
        if not self.values:
            return {"count": self.count, "mean": None, "p50": None, "p95": None, "p99": None}
        ordered = sorted(self.values)
        p50, p95, p99 = (_percentile(ordered, q) for q in (50, 95, 99))
        return {
            "count": self.count,
            "mean": round(self.total / self.count, 3),
            "p50": round(float(p50), 3),
            "p95": round(float(p95), 3),
            "p99": round(float(p99), 3),
        }


def _percentile(ordered: list[float], q: float) -> float:
    """numpy's default (linear) percentile of sorted values, in plain Python: np.percentile imports
    numpy.ma on first use, ~5 ms at the end of every run."""
    position = q / 100 * (len(ordered) - 1)
    low = int(position)
    a, b = ordered[low], ordered[min(low + 1, len(ordered) - 1)]
    fraction = position - low
    # numpy's two-sided form: exact at both ends of the interval
    return b - (b - a) * (1 - fraction) if fraction >= 0.5 else a + (b - a) * fraction


@dataclass
class SourceStats:
    frames_decoded: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    faces: int = 0  # faces in the latest processed frame
    state: str = ""  # the source's state: connecting, streaming, reconnecting, stopped, failed
    failures: int = 0  # live sources: connection attempts that failed or broke
    packets_lost: int = 0  # network sources: RTP packets that never arrived
    decode_errors: int = 0  # packets that could not be decoded or gave a patched-up picture
    reconnects: int = 0
    last_error: str | None = None  # message of the latest failed/reconnecting status
    latency_ms: _Recent = field(default_factory=_Recent)  # capture -> results handed to sinks
    processed_at: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def fps(self, now: float) -> float:
        """Processed frames per second over the last few seconds."""
        recent = [t for t in self.processed_at if now - t <= 5.0]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0


class PipelineStats:
    """Thread-safe counters for one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, SourceStats] = {}
        self._inference_ms: dict[str, _Recent] = {}
        self.started = time.time()

    def source(self, source_id: str) -> SourceStats:
        with self._lock:
            return self._sources.setdefault(source_id, SourceStats())

    def frame_processed(self, source_id: str, capture_wall_time: float, faces: int) -> None:
        now = time.time()
        with self._lock:
            stats = self._sources.setdefault(source_id, SourceStats())
            stats.frames_processed += 1
            stats.faces = faces
            stats.latency_ms.add((now - capture_wall_time) * 1000.0)
            stats.processed_at.append(now)

    def inference(self, model: str, milliseconds: float) -> None:
        with self._lock:
            self._inference_ms.setdefault(model, _Recent()).add(milliseconds)

    def state_changed(self, source_id: str, state: str, message: str = "") -> None:
        """Count reconnections and keep the last error from a source's status events."""
        with self._lock:
            stats = self._sources.setdefault(source_id, SourceStats())
            if state == "reconnecting":
                stats.reconnects += 1
            if state in ("reconnecting", "failed") and message:
                stats.last_error = message

    def histograms(self) -> dict[str, dict[str, Histogram]]:
        """Lifetime histograms: inference time per model, capture-to-sink latency per source."""
        with self._lock:
            return {
                "inference_ms": {model: recent.histogram() for model, recent in self._inference_ms.items()},
                "latency_ms": {sid: stats.latency_ms.histogram() for sid, stats in self._sources.items()},
            }

    def set_counts(
        self,
        source_id: str,
        decoded: int,
        dropped: int,
        state: str = "",
        failures: int = 0,
        damage: tuple[int, int] = (0, 0),
    ) -> None:
        """Counts owned by the source and its buffer, copied in when a snapshot is taken;
        ``damage``: (packets lost, decode errors)."""
        with self._lock:
            stats = self._sources.setdefault(source_id, SourceStats())
            stats.frames_decoded, stats.frames_dropped = decoded, dropped
            stats.state, stats.failures = state, failures
            stats.packets_lost, stats.decode_errors = damage

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            return {
                "uptime_s": round(now - self.started, 3),
                "sources": {
                    source_id: {
                        "frames_decoded": stats.frames_decoded,
                        "frames_processed": stats.frames_processed,
                        "frames_dropped": stats.frames_dropped,
                        "state": stats.state,
                        "failures": stats.failures,
                        "packets_lost": stats.packets_lost,
                        "decode_errors": stats.decode_errors,
                        "faces": stats.faces,
                        "reconnects": stats.reconnects,
                        "last_error": stats.last_error,
                        "fps": round(stats.fps(now), 2),
                        "latency_ms": stats.latency_ms.summary(),
                    }
                    for source_id, stats in self._sources.items()
                },
                "inference_ms": {model: recent.summary() for model, recent in self._inference_ms.items()},
            }
