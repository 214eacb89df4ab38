"""Prometheus metrics, read from the pipeline's statistics at scrape time.

A custom collector (rather than counters updated per frame) keeps the hot path free of metric
calls: the pipeline already counts everything in :mod:`streamproc.core.stats`; a scrape converts it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamproc import __version__
from streamproc.core.frames import SourceState
from streamproc.core.stats import Histogram
from streamproc.server.health import readiness
from streamproc.server.view import PipelineView
from streamproc.sinks.live import LiveViewSink

PREFIX = "streamproc"


def _family(kind: type[Any], name: str, doc: str, label: str, values: Mapping[str, Any]) -> Metric:
    """One metric family with one sample per label value, skipping unknown (None) values."""
    family = kind(f"{PREFIX}_{name}", doc, labels=[label])
    for key, value in values.items():
        if value is not None:
            family.add_metric([key], float(value))
    return family


def _histogram(name: str, doc: str, label: str, histograms: Mapping[str, Histogram]) -> Metric:
    """Millisecond histograms from the stats, exported in seconds as Prometheus expects."""
    family = HistogramMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for key, hist in histograms.items():
        cumulative = list(accumulate(hist.counts))
        buckets = [
            (repr(bound / 1000.0), count) for bound, count in zip(hist.bounds, cumulative, strict=False)
        ]
        buckets.append(("+Inf", cumulative[-1]))
        family.add_metric([key], buckets, sum_value=hist.total / 1000.0)
    return family


Column = tuple[type[Any], str, str, str]  # (family type, metric name, help, key in the snapshot)

# per-source numbers from PipelineStats.snapshot()["sources"]
SOURCE_COLUMNS: tuple[Column, ...] = (
    (CounterMetricFamily, "frames_decoded", "frames decoded", "frames_decoded"),
    (CounterMetricFamily, "frames_processed", "frames through inference", "frames_processed"),
    (CounterMetricFamily, "frames_dropped", "frames dropped by a full buffer", "frames_dropped"),
    (CounterMetricFamily, "source_reconnects", "reconnection attempts", "reconnects"),
    (CounterMetricFamily, "packets_lost", "RTP packets that never arrived (UDP loss)", "packets_lost"),
    (CounterMetricFamily, "decode_errors", "packets undecodable or decoded patched-up", "decode_errors"),
    (GaugeMetricFamily, "source_fps", "processed frames per second, last 5 s", "fps"),
    (GaugeMetricFamily, "source_faces", "faces in the latest frame", "faces"),
)
# per-sink numbers from Pipeline.sinks_snapshot()
SINK_COLUMNS: tuple[Column, ...] = (
    (
        CounterMetricFamily,
        "sink_errors",
        "errors that stopped a sink (a failing sink is skipped after its first error)",
        "errors",
    ),
    (CounterMetricFamily, "sink_dropped", "results a full sink queue dropped (live runs)", "dropped"),
    (
        CounterMetricFamily,
        "sink_refused",
        "messages the receiver refused (MQTT 5 reason code >= 0x80, e.g. denied by an ACL)",
        "refused",
    ),
    (GaugeMetricFamily, "sink_queue_depth", "results and status events waiting for a sink", "queued"),
    (
        GaugeMetricFamily,
        "sink_backlog",
        "messages a sink holds that are not yet delivered (e.g. MQTT publishes in flight)",
        "backlog",
    ),
)


def _columns(
    columns: tuple[Column, ...], label: str, rows: Mapping[str, Mapping[str, Any]]
) -> Iterator[Metric]:
    for kind, name, doc, key in columns:
        yield _family(kind, name, doc, label, {row_id: row[key] for row_id, row in rows.items()})


class PipelineCollector(Collector):
    """Converts a pipeline's stats, sources and sinks into metric families on every scrape."""

    def __init__(self, pipeline: PipelineView, live: LiveViewSink | None, require_sources: bool) -> None:
        self._pipeline = pipeline
        self._live = live
        self._require_sources = require_sources

    def collect(self) -> Iterator[Metric]:
        pipeline = self._pipeline
        stats = pipeline.stats_snapshot()
        sources = pipeline.sources_snapshot()
        sinks = {
            name: {**values, "errors": int(values["error"] is not None)}
            for name, values in pipeline.sinks_snapshot().items()
        }
        histograms = pipeline.stats.histograms()

        info = GaugeMetricFamily(f"{PREFIX}_build_info", "streamproc version", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield info
        yield GaugeMetricFamily(
            f"{PREFIX}_uptime_seconds", "seconds since the run started", stats["uptime_s"]
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ready",
            "1 when every source is streaming or finished OK and every sink writes",
            float(readiness(pipeline, self._require_sources)[0]),
        )
        yield from _columns(SOURCE_COLUMNS, "source", stats["sources"])
        yield _family(
            GaugeMetricFamily,
            "source_buffered_frames",
            "frames waiting between decoder and inference",
            "source",
            {source_id: values["buffered"] for source_id, values in sources.items()},
        )
        state = GaugeMetricFamily(
            f"{PREFIX}_source_state", "1 for the state each source is in", labels=["source", "state"]
        )
        for source_id, values in sources.items():
            for name in SourceState:
                state.add_metric([source_id, name.value], float(values["state"] == name.value))
        yield state
        yield _histogram(
            "inference_seconds", "inference time per frame, per model", "model", histograms["inference_ms"]
        )
        yield _histogram(
            "capture_to_sink_seconds",
            "time from capture to results handed to the sinks",
            "source",
            histograms["latency_ms"],
        )
        yield from _columns(SINK_COLUMNS, "sink", sinks)
        yield _not_written(sinks)
        if self._live is not None:
            yield _family(
                GaugeMetricFamily, "live_viewers", "open live-view streams", "source", self._live.viewers()
            )
            yield CounterMetricFamily(
                f"{PREFIX}_live_frames_encoded", "frames encoded for live viewers", self._live.frames_encoded
            )


def _not_written(sinks: Mapping[str, Mapping[str, Any]]) -> Metric:
    family = CounterMetricFamily(
        f"{PREFIX}_sink_frames_not_written",
        "frames a sink was given and did not write, by reason (queue full, sink failed, write error...)",
        labels=["sink", "reason"],
    )
    for name, values in sinks.items():
        for reason, frames in values.get("not_written", {}).items():
            family.add_metric([name, reason], frames)
    return family


def metrics_registry(
    pipeline: PipelineView, live: LiveViewSink | None, require_sources: bool = True
) -> CollectorRegistry:
    """A registry of its own (not the global one) with the pipeline's and the process's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(pipeline, live, require_sources))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
