"""The camera-group actor: one group's pipeline, on whichever worker Ray places (and re-places) it."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any

from streamproc.config.settings import Settings
from streamproc.core.errors import StreamprocError
from streamproc.distributed.aggregate import WorkerSnapshot
from streamproc.distributed.ledger import ReportingSink, TrackLedger
from streamproc.distributed.worker_logs import process_age, setup_worker_logging
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import Pipeline
from streamproc.sinks.base import Sink
from streamproc.sinks.kinds import sink_kind

log = logging.getLogger(__name__)


def reports_track_ends(sink: Any) -> bool:
    """Whether the driver also opens this ``sinks:`` entry, to end the tracks of lost workers there."""
    return sink_kind(sink.type).reports_track_ends


class GroupWorker:
    """The actor: the group's pipeline runs in a thread from construction, so a restarted actor
    (Ray constructs it again) resumes its cameras by itself. Frame numbers, track ids and stats
    start over in each incarnation."""

    def __init__(self, data: dict[str, Any], group: str, level: int, registry: Any) -> None:
        import ray  # inside a worker: Ray is there

        began = time.perf_counter()
        self.incarnation = uuid.uuid4().hex
        self._node = f"{os.uname().nodename}/{ray.get_runtime_context().get_node_id()[:12]}"
        setup_worker_logging(level, group)
        self._ledger = TrackLedger()
        self._problems: list[str] = []
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{group}", daemon=True)
        settings = Settings.model_validate(data)

        def reporting(index: int, sink: Sink) -> Sink:
            if not reports_track_ends(settings.sinks[index]):
                return sink
            return ReportingSink(sink, index, registry, group, self.incarnation)

        try:
            # the job's groups append to the same files: its driver holds their locks
            self._pipeline: Pipeline | None = build_pipeline(
                settings, extra_sinks=[self._ledger], wrap_sink=reporting, lock_outputs=False
            )
        except StreamprocError as exc:  # reported to the driver, which stops watching this group
            log.error("group %s cannot start: %s", group, exc)
            self._pipeline, self._problems = None, [str(exc)]
            return
        self._thread.start()
        age = process_age()
        log.info(
            "group %s started (incarnation %s): pipeline built in %.2f s, in a worker process up %s",
            group,
            self.incarnation[:8],
            time.perf_counter() - began,
            "(unknown)" if age is None else f"{age:.2f} s",
        )

    def _run(self) -> None:
        assert self._pipeline is not None
        try:
            self._problems = self._pipeline.run().problems()
        except StreamprocError as exc:
            self._problems = [str(exc)]

    def snapshot(self) -> WorkerSnapshot:
        snapshot = WorkerSnapshot(self.incarnation, self._node, os.getpid(), problems=self._problems)
        pipeline = self._pipeline
        if pipeline is not None:
            snapshot.stats, snapshot.sources = pipeline.stats_snapshot(), pipeline.sources_snapshot()
            snapshot.sinks, snapshot.histograms = pipeline.sinks_snapshot(), pipeline.stats.histograms()
            snapshot.open_tracks, snapshot.running = self._ledger.open_tracks(), self._thread.is_alive()
        return snapshot

    def stop(self) -> list[str]:
        """Ordered shutdown (queued frames processed, outputs flushed); the run's problems."""
        if self._pipeline is not None:
            self._pipeline.stop()
            self._thread.join()
        return self._problems
