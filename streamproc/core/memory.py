"""Memory: keep glibc from giving every capture thread its own malloc arena.

glibc creates up to 8 arenas per core as threads contend for malloc. With a dozen capture threads
each allocating 1.4 MB decoded frames, every arena grows its own pool of freed frames: at 12 cameras
of 720p RSS climbed from ~270 MB to ~545 MB in the first minute, and the page faults of that growth
came with dropped frames and a p99 latency of 0.5 s. Two arenas keep RSS at ~280 MB with no drops
(measured with benchmarks/bench_live.py, 80 s trials). Setting MALLOC_ARENA_MAX yourself wins.

Only runs with live sources are capped: they run for days and memory is what bounds them. In a file
run the cap cost CPU (threads contend for two arenas' locks): ~7 % more CPU per frame with the
annotated video on (720p, 12.5 -> 13.5 ms), a little throughput without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

# pictures beyond twice 4K are decoded and encoded lean (slice threads, one x264 thread, no
# look-ahead): frame threads and look-ahead would each hold 100 MB and more at 8192x8192
HUGE_PIXELS = 3840 * 2160 * 2

_M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> None:
    """Cap glibc's malloc arenas for threads started from now on (no-op elsewhere)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        if not libc.mallopt(_M_ARENA_MAX, arenas):
            log.debug("mallopt(M_ARENA_MAX) refused")
    except (OSError, AttributeError) as exc:  # not glibc (musl): nothing to tune
        log.debug("cannot limit malloc arenas: %s", exc)
