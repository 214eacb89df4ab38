"""Logging inside Ray workers, which start unconfigured: every line names the worker and its group."""

from __future__ import annotations

import logging
import os
import time

from streamproc.cli.logs import OWN_LOGGER, setup_logging

WORKER_FORMAT = "%(asctime)s %(levelname)-7s [worker %(worker)s, %(group)s] %(message)s"


class _Named(logging.Filter):
    def __init__(self, worker: str, group: str) -> None:
        super().__init__()
        self.worker, self.group = worker, group

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker, record.group = self.worker, self.group
        return True


def setup_worker_logging(level: int, group: str) -> None:
    """Configure this worker process's logging (once per task or actor: the group may change)."""
    setup_logging()
    handler = logging.getLogger().handlers[0]
    handler.setFormatter(logging.Formatter(WORKER_FORMAT, "%H:%M:%S"))
    handler.addFilter(_Named(f"{os.uname().nodename}:{os.getpid()}", group))
    logging.getLogger(OWN_LOGGER).setLevel(level)


def driver_level() -> int:
    """The level streamproc's loggers have here, for the workers to use too."""
    return logging.getLogger(OWN_LOGGER).getEffectiveLevel()


def process_age() -> float | None:
    """Seconds since this process started (Linux), to tell how long a restarted worker took to
    come up; None where /proc cannot say."""
    try:
        with open("/proc/self/stat") as stat:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # AttributeError: no CLOCK_BOOTTIME (not Linux)
        return None
