"""Detached camera jobs: with ``distributed.job`` (``--job NAME``) the camera groups and the track
registry are named, detached actors of that job, so they outlive their driver.

A driver that dies (``kill -9``, a crash, its host rebooting) leaves the groups running: their
pipelines keep writing their outputs. A driver started again with the same config and job name
finds the actors by name and attaches to them instead of starting new ones: no ``end``/``new``
pair, no gap in the records. An ordered stop (Ctrl-C, SIGTERM, ``duration``) still ends the whole
job; ``streamproc cluster stop JOB`` ends one whose driver is gone.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "streamproc"  # every driver joins it: named actors are found only within a namespace
REGISTRY = "track-registry"
_SEPARATOR = ":"  # job names never hold it (DistributedSettings.job): a name's prefix is its job


def actor_options(job: str | None, part: str) -> dict[str, Any]:
    """Ray actor options making ``part`` (a group, or the registry) an actor of ``job``: named,
    detached, and the existing one when it is already running. Nothing without a job."""
    if job is None:
        return {}
    return {
        "name": f"{job}{_SEPARATOR}{part}",
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
    }


def job_actors(ray: Any, job: str) -> dict[str, Any]:
    """The running actors of ``job`` by part (group names, and REGISTRY)."""
    prefix = f"{job}{_SEPARATOR}"
    found = {}
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == NAMESPACE and entry["name"].startswith(prefix):
            found[entry["name"][len(prefix) :]] = ray.get_actor(entry["name"], namespace=NAMESPACE)
    return found
