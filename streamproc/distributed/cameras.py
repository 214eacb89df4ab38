"""Live sources as Ray actors: one actor per group, restarted elsewhere when its worker or node dies.

Frames never leave the worker that decodes them (a 720p frame costs ~19 ms to ship to another
process); the driver only polls each group's small snapshot, sends ``worker_lost`` ends for tracks
that died with a worker (known from the track registry beside it, see ledger), keeps the aggregate
availability and serves the whole system's numbers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from streamproc.config.settings import Settings
from streamproc.core.errors import ConfigError
from streamproc.core.events import WorkerLostEnd
from streamproc.distributed.aggregate import ClusterView
from streamproc.distributed.detached import REGISTRY, actor_options, job_actors
from streamproc.distributed.driver_outputs import DriverOutputs
from streamproc.distributed.group_worker import GroupWorker
from streamproc.distributed.groups import camera_groups, group_settings, with_ids
from streamproc.distributed.ledger import TrackRegistry
from streamproc.distributed.worker_logs import driver_level
from streamproc.pipeline.build import source_ids
from streamproc.pipeline.output_checks import check_outputs, input_files

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


class GroupWatch:
    """The driver's side of one group: its actor, the poll in flight and the tracks it last saw open."""

    def __init__(self, group: str, actor: Any) -> None:
        self.group, self.actor = group, actor
        self.pending: Any = None
        self.open_tracks: dict[str, dict[str, Any]] = {}
        self.finished = False  # its pipeline ended (duration, or it could not start)
        self.incarnation: str | None = None  # of the worker that answered last


def start_registry(ray: Any, job: str | None = None) -> Any:
    """The track registry, on this (the driver's) node: it must outlive any worker node. A job's
    is detached, and found again by a restarted driver."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    named = actor_options(job, REGISTRY)
    registry_class = ray.remote(TrackRegistry).options(num_cpus=0, scheduling_strategy=here, **named)
    registry = registry_class.remote()
    ray.get(registry.__ray_ready__.remote())  # placed and constructed before any worker reports
    return registry


def start_groups(ray: Any, settings: Settings, registry: Any) -> list[GroupWatch]:
    """An actor per group; a job's groups that are running already are attached to, not started."""
    options, job = settings.distributed, settings.distributed.job
    groups = camera_groups(with_ids(settings.sources), options.cameras_per_worker)
    _check_cpus(len(groups) * options.group_cpus, ray.cluster_resources().get("CPU", 0.0), settings)
    running = job_actors(ray, job) if job else {}
    for stray in sorted(set(running) - set(groups) - {REGISTRY}):
        log.warning(
            "job %s: group %s runs but is not in this config ('streamproc cluster stop' ends it)", job, stray
        )
    watches = []
    for group, sources in groups.items():
        names = ", ".join(source.id or source.url for source in sources)
        log.info("group %s: %s%s", group, names, " (running: attached)" if group in running else "")
        actor_class = ray.remote(GroupWorker).options(
            max_restarts=-1,
            num_cpus=options.group_cpus,
            scheduling_strategy="SPREAD",
            **actor_options(job, group),
        )
        actor = actor_class.remote(group_settings(settings, group, sources), group, driver_level(), registry)
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


def poll(ray: Any, watches: list[GroupWatch], view: ClusterView, ends: LostTracks, wait_s: float) -> None:
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
            if watch.incarnation is not None:
                ends.end(watch, lost=watch.incarnation)
            continue
        if view.update(watch.group, snapshot):
            log.warning("group %s: resumed on %s (pid %d)", watch.group, snapshot.node, snapshot.pid)
        if snapshot.incarnation != watch.incarnation:  # incarnations the driver never saw die, too
            ends.end(watch, keep=snapshot.incarnation)
            watch.incarnation = snapshot.incarnation
        watch.open_tracks, watch.finished = snapshot.open_tracks, not snapshot.running
    ends.outputs.set_available(not view.all_lost())


class LostTracks:
    """Writes the ``worker_lost`` ends of a lost worker's tracks to the outputs still owing them."""

    def __init__(self, ray: Any, registry: Any, outputs: DriverOutputs) -> None:
        self._ray, self._registry, self.outputs = ray, registry, outputs

    def end(self, watch: GroupWatch, lost: str | None = None, keep: str | None = None) -> None:
        tracks = self._ray.get(self._registry.take.remote(watch.group, lost, keep))
        if not tracks:
            return
        log.info("group %s: %d tracks ended as worker_lost", watch.group, len(tracks))
        for track_id, track in tracks.items():  # the latest state polled, else the announcement
            last = watch.open_tracks.pop(track_id, track.new)
            self.outputs.send([WorkerLostEnd(last)], track.owing)


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
    # the job's outputs are locked here, for the job: its groups, appending to the same files, do not
    locks = check_outputs(settings.sinks, input_files(settings.sources, source_ids(settings.sources)))
    outputs = DriverOutputs(settings, view.stats_snapshot)
    outputs.open()
    registry = start_registry(ray, settings.distributed.job)
    watches = start_groups(ray, settings, registry)
    ends = LostTracks(ray, registry, outputs)
    deadline = time.monotonic() + settings.duration if settings.duration else float("inf")
    try:
        with _http(settings, view):
            while not stop.is_set() and time.monotonic() < deadline and not all(w.finished for w in watches):
                poll(ray, watches, view, ends, settings.distributed.poll_interval)
                stop.wait(max(0.0, settings.distributed.poll_interval - 0.05))
        problems = stop_groups(ray, watches)
        ray.kill(registry)
        _log_summary(view)
    finally:
        outputs.close()
        locks.release()
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
