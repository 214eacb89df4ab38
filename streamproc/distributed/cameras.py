"""Live sources as Ray actors: one actor per group, restarted elsewhere when its worker or node dies.

Frames never leave the worker that decodes them (a 720p frame costs ~19 ms to ship to another
process); the driver only polls each group's small snapshot, sends ``worker_lost`` ends for tracks
that died with a worker, keeps the aggregate availability and serves the whole system's numbers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from streamproc.config import Settings
from streamproc.distributed.aggregate import ClusterView
from streamproc.distributed.driver_outputs import DriverOutputs
from streamproc.distributed.group_worker import GroupWorker
from streamproc.distributed.groups import camera_groups, group_settings, with_ids
from streamproc.distributed.ledger import LostEnd
from streamproc.distributed.worker_logs import driver_level
from streamproc.errors import ConfigError

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


class GroupWatch:
    """The driver's side of one group: its actor, the poll in flight and the tracks it last saw open."""

    def __init__(self, group: str, actor: Any) -> None:
        self.group, self.actor = group, actor
        self.pending: Any = None
        self.open_tracks: dict[str, dict[str, Any]] = {}
        self.finished = False  # its pipeline ended (duration, or it could not start)


def start_groups(ray: Any, settings: Settings) -> list[GroupWatch]:
    options = settings.distributed
    groups = camera_groups(with_ids(settings.sources), options.cameras_per_worker)
    _check_cpus(len(groups) * options.group_cpus, ray.cluster_resources().get("CPU", 0.0), settings)
    actor_class = ray.remote(GroupWorker).options(
        max_restarts=-1, num_cpus=options.group_cpus, scheduling_strategy="SPREAD"
    )
    watches = []
    for group, sources in groups.items():
        log.info("group %s: %s", group, ", ".join(source.id or source.url for source in sources))
        actor = actor_class.remote(group_settings(settings, group, sources), group, driver_level())
        watches.append(GroupWatch(group, actor))
    return watches


def _check_cpus(needed: float, available: float, settings: Settings) -> None:
    """Groups that do not fit would wait for CPUs forever: refuse here, warn on a cluster (which
    may grow)."""
    if needed <= available:
        return
    problem = (
        f"{needed:g} CPUs needed by the camera groups (distributed.group_cpus each), {available:g} "
        "available: raise --workers or cameras_per_worker, or lower group_cpus"
    )
    if settings.distributed.cluster is None:
        raise ConfigError(problem)
    log.warning("%s; groups wait until the cluster has room", problem)


def poll(
    ray: Any, watches: list[GroupWatch], view: ClusterView, outputs: DriverOutputs, wait_s: float
) -> None:
    """One look at every group: record snapshots, notice lost workers and end their tracks."""
    for watch in watches:
        if watch.pending is None and not watch.finished:
            watch.pending = watch.actor.snapshot.remote()
    pending = [watch.pending for watch in watches if watch.pending is not None]
    ready, _ = ray.wait(pending, num_returns=len(pending), timeout=wait_s)
    for watch in watches:
        if watch.pending is None or watch.pending not in ready:
            continue
        ref, watch.pending = watch.pending, None
        try:
            snapshot = ray.get(ref)
        except ray.exceptions.RayError as exc:
            if view.alive(watch.group) or watch.open_tracks:
                log.warning("group %s: worker lost (%s); Ray restarts it", watch.group, type(exc).__name__)
            view.lost(watch.group)
            _end_lost(watch, outputs)
            continue
        if view.update(watch.group, snapshot):
            log.warning("group %s: resumed on %s (pid %d)", watch.group, snapshot.node, snapshot.pid)
            _end_lost(watch, outputs)
        watch.open_tracks, watch.finished = snapshot.open_tracks, not snapshot.running
    outputs.set_available(not view.all_lost())


def _end_lost(watch: GroupWatch, outputs: DriverOutputs) -> None:
    if watch.open_tracks:
        log.info("group %s: %d tracks ended as worker_lost", watch.group, len(watch.open_tracks))
        outputs.send([LostEnd(last) for last in watch.open_tracks.values()])
        watch.open_tracks = {}


def stop_groups(ray: Any, watches: list[GroupWatch]) -> list[str]:
    """Stop every group in order; the problems they report (or that stopping them met)."""
    refs = {watch.group: watch.actor.stop.remote() for watch in watches}
    problems: list[str] = []
    for group, ref in refs.items():
        try:
            problems += [f"{group}: {problem}" for problem in ray.get(ref, timeout=STOP_TIMEOUT_S)]
        except ray.exceptions.RayError as exc:
            problems.append(f"{group}: could not be stopped cleanly: {type(exc).__name__}")
    for watch in watches:
        ray.kill(watch.actor, no_restart=True)
    return problems


def run_cameras(
    ray: Any, settings: Settings, stop: threading.Event, view: ClusterView | None = None
) -> list[str]:
    """Run every group until ``stop`` is set or ``duration`` has passed; the problems at the end.
    ``view`` receives the workers' snapshots (the caller may watch it)."""
    view = view or ClusterView()
    outputs = DriverOutputs(settings, view.stats_snapshot)
    outputs.open()
    watches = start_groups(ray, settings)
    deadline = time.monotonic() + settings.duration if settings.duration else float("inf")
    try:
        with _http(settings, view):
            while not stop.is_set() and time.monotonic() < deadline and not all(w.finished for w in watches):
                poll(ray, watches, view, outputs, settings.distributed.poll_interval)
                stop.wait(max(0.0, settings.distributed.poll_interval - 0.05))
        problems = stop_groups(ray, watches)
        _log_summary(view)
    finally:
        outputs.close()
    return problems


def _log_summary(view: ClusterView) -> None:
    """One line per camera and one per group, from the workers' last answers."""
    stats = view.stats_snapshot()
    for source_id, numbers in stats["sources"].items():
        log.info(
            "%s: %d frames processed, %d dropped, %s",
            source_id,
            numbers["frames_processed"],
            numbers["frames_dropped"],
            numbers["state"],
        )
    for group, worker in stats["workers"].items():
        log.info("group %s: last on %s, restarted %d times", group, worker["node"], worker["restarts"])


def _http(settings: Settings, view: ClusterView) -> Any:
    """The driver's HTTP server over the aggregated view (no live pictures: frames stay on workers)."""
    if not settings.http.enabled:
        return contextlib.nullcontext()
    from streamproc.server import StatusServer

    # the view's ``stats`` offers the histograms /metrics reads, merged over the workers
    return StatusServer(settings.http, view)  # type: ignore[arg-type]
