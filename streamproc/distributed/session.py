"""Connecting to Ray: a local instance for ``--workers N``, an existing cluster for ``--cluster``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from streamproc.config.settings import Settings
from streamproc.core.errors import ConfigError
from streamproc.distributed.detached import NAMESPACE

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'streamproc[ray]'"
# the least object store Ray accepts: frames never travel through it (they stay where decoded)
LOCAL_OBJECT_STORE_BYTES = 80 * 1024 * 1024
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN")


def import_ray() -> ModuleType:
    """Ray, or a one-line ConfigError (exit code 2) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--workers and --cluster need Ray, not installed here: {INSTALL_HINT}") from None
    return ray


def worker_env() -> dict[str, str]:
    """STREAMPROC_* variables the workers need too (e.g. the models folder). Secrets stay here: they
    travel inside the settings, not in Ray's runtime environment, which Ray records."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("STREAMPROC_") and not any(word in name for word in _SECRET_WORDS)
    }


def init_options(settings: Settings) -> dict[str, Any]:
    """ray.init's arguments: join ``distributed.cluster``, or start Ray here with ``workers`` CPUs."""
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": worker_env()},
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "configure_logging": False,
        "namespace": NAMESPACE,  # where a restarted driver finds its job's named actors
    }
    cluster = settings.distributed.cluster
    if cluster is not None:
        return {**options, "address": cluster}
    return {
        **options,
        "address": "local",  # a new instance even when RAY_ADDRESS names a cluster
        "num_cpus": settings.workers,
        "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
        "_node_ip_address": "127.0.0.1",  # a local run listens on loopback only
    }


def plain_worker_lines() -> None:
    """Ray's driver prints each worker line with a ``(task pid=N)`` prefix in terminal colours, and
    folds similar lines into one ``[repeated 4x across cluster]``, also coloured: in a log file these
    become ``\x1b[36m`` codes and lost lines. Unless both outputs are terminals (and NO_COLOR is
    unset), every line is printed, plainly. Call before importing Ray (it reads RAY_DEDUP_LOGS then);
    values the user set win."""
    terminals = all(stream is not None and stream.isatty() for stream in (sys.stdout, sys.stderr))
    if not terminals or os.environ.get("NO_COLOR"):
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@contextmanager
def ray_session(settings: Settings) -> Iterator[ModuleType]:
    """Ray connected for the block; a local instance started here is shut down after it."""
    plain_worker_lines()
    ray = import_ray()
    options = init_options(settings)
    cluster = settings.distributed.cluster
    where = cluster if cluster is not None else f"this machine ({settings.workers} workers)"
    try:
        ray.init(**options)
    except Exception as exc:  # Ray raises a bare Exception when its node does not come up in time
        raise ConfigError(f"cannot start or reach Ray at {where}: {exc}") from None
    log.info("running on Ray: %s", where)
    try:
        yield ray
    finally:
        ray.shutdown()
