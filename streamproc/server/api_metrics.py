"""Prometheus metrics of the detection API, in the server's own registry beside the pipeline's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamproc.server.detect_pool import DetectPool

SECONDS_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ApiMetrics:
    """Answers by status, time to answer (successful requests, upload included) and queue depth."""

    def __init__(self, registry: CollectorRegistry, pool: DetectPool) -> None:
        self._answers = Counter(
            "streamproc_api_requests", "detection API answers, by HTTP status", ["status"], registry=registry
        )
        self._seconds = Histogram(
            "streamproc_api_request_seconds",
            "time to answer a detection request that succeeded, upload included",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        queued = Gauge("streamproc_api_queued", "detection requests waiting for a worker", registry=registry)
        queued.set_function(pool.queued)

    def record(self, status: int, seconds: float) -> None:
        self._answers.labels(str(status)).inc()
        if status == 200:
            self._seconds.observe(seconds)
