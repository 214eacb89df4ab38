"""``streamproc cluster status|stop JOB``: a detached camera job (``--job``) seen or ended from any
host that reaches its Ray cluster, with or without its driver (see :mod:`.detached`)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from streamproc.config.settings import DistributedSettings, Settings
from streamproc.core.errors import StreamprocError

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0


def add_cluster_command(commands: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="show or stop a detached camera job on a Ray cluster",
        description="A camera run started with --job NAME keeps its groups running when its driver "
        "dies. 'status' prints each group's worker and cameras; 'stop' ends the job in order (queued "
        "frames processed, open tracks ended, outputs flushed) and removes its actors. Exit code 1 "
        "when a group does not answer.",
        epilog="example: streamproc cluster status lobby --cluster auto",
    )
    cluster.add_argument("action", choices=["status", "stop"], help="what to do")
    cluster.add_argument("job", metavar="JOB", help="the job's name (--job, distributed.job)")
    cluster.add_argument("--cluster", default="auto", metavar="ADDRESS", help="Ray address (default: auto)")
    add_common(cluster)
    cluster.set_defaults(handler=run_cluster_command)


def run_cluster_command(args: argparse.Namespace) -> int:
    from streamproc.distributed.detached import REGISTRY, job_actors
    from streamproc.distributed.session import ray_session

    with ray_session(Settings(distributed=DistributedSettings(cluster=args.cluster))) as ray:
        actors = job_actors(ray, args.job)
        registry = actors.pop(REGISTRY, None)
        if not actors:
            raise StreamprocError(f"no job named {args.job} runs on the cluster at {args.cluster}")
        if args.action == "status":
            return _status(ray, args.job, actors)
        problems = _stop(ray, actors)
        if registry is not None:
            ray.kill(registry)
    for problem in problems:
        log.error("%s", problem)
    print(f"job {args.job}: {len(actors)} groups stopped")
    return 1 if problems else 0


def _status(ray: Any, job: str, actors: dict[str, Any]) -> int:
    """One line per group and one per camera; 1 when a group does not answer."""
    refs = {group: actor.snapshot.remote() for group, actor in sorted(actors.items())}
    print(f"job {job}: {len(refs)} groups")
    silent = 0
    for group, ref in refs.items():
        try:
            snapshot = ray.get(ref, timeout=ANSWER_TIMEOUT_S)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            print(f"group {group}: not answering ({type(exc).__name__}): Ray is restarting it, or it is gone")
            silent += 1
            continue
        state = "running" if snapshot.running else "ended"
        print(
            f"group {group}: {state} on {snapshot.node} (pid {snapshot.pid}), "
            f"incarnation {snapshot.incarnation[:8]}"
        )
        for source_id, numbers in snapshot.stats.get("sources", {}).items():
            print(
                f"  {source_id}: {numbers['state']}, {numbers['frames_processed']} frames processed, "
                f"{numbers['frames_dropped']} dropped"
            )
    return 1 if silent else 0


def _stop(ray: Any, actors: dict[str, Any]) -> list[str]:
    from streamproc.distributed.cameras import GroupWatch, stop_groups

    return stop_groups(ray, [GroupWatch(group, actor) for group, actor in actors.items()])
