"""Thread priorities: in a file run, the stages around inference give way to it.

A file's decoder runs ahead into its buffer and the sinks work through a queue, so neither needs the
CPU at any given moment; inference, one frame at a time, is the critical path. On a machine with
few cores, lowering the others' priority lets inference run whenever it can (+9 % fps at 720p on
2 cores). Live sources keep their priority: a camera's packets must be read when they arrive.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

BACKGROUND_NICENESS = 5


def lower_thread_priority(increment: int = BACKGROUND_NICENESS) -> None:
    """Make the calling thread, and the threads it starts from now on (FFmpeg's decoder threads),
    ``increment`` nicer. Linux keeps a nice value per thread; elsewhere this does nothing."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + increment)
    except OSError as exc:  # e.g. a sandbox that forbids it: only speed is lost
        log.debug("cannot lower the priority of thread %d: %s", thread, exc)
