"""When a sink tries again after an output error (disk full) on a live run: growing delays, a
limit, and the problem to report meanwhile (``/readyz`` shows it).

Once the run is stopping (Ctrl-C, SIGTERM, the end of the input), the limit shrinks to a short
grace (``shutdown_grace``): a user who stops a run expects it to end within seconds, not after the
ten minutes a running live source may wait for disk space.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path

from streamproc.config.settings import SHUTDOWN_GRACE_S

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0  # a retry costs one failed write: space that comes back is used within 5 s
RETRY_FOR_S = 600.0  # without one success for this long, the sink fails for good


class Retry:
    """Delays of RETRY_FIRST_S doubling to RETRY_MAX_S between attempts, for up to RETRY_FOR_S;
    after :meth:`stop`, for ``grace_s`` at most."""

    def __init__(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        self.problem: str | None = None  # why the output is not being written right now
        self.reason = ""  # the last failure, without "retrying"
        self.grace_s = grace_s
        self._delay = RETRY_FIRST_S
        self._next = 0.0
        self._since: float | None = None
        self._deadline: float | None = None  # set by stop()
        self._stopping = threading.Event()  # wakes a sink waiting between attempts

    def failed(self, problem: str) -> float:
        """An attempt failed: remember why; returns the seconds to wait before the next."""
        now = time.monotonic()
        if self._since is None:
            self._since, self._delay = now, RETRY_FIRST_S
        else:
            self._delay = min(self._delay * 2, RETRY_MAX_S)
        self.problem, self.reason = f"{problem}; retrying", problem
        self._next = now + self._delay
        if self._deadline is not None:  # stopping: no attempt after the grace
            return round(max(0.0, min(self._delay, self._deadline - now)), 1)
        return self._delay

    def stop(self) -> None:
        """The run is stopping (called from another thread): tries end ``grace_s`` from now."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.grace_s
            self._stopping.set()

    @property
    def out_of_grace(self) -> bool:
        """The run is stopping and its grace is over: give up, counting what is not written."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def wait(self, delay: float) -> None:
        """Sleep ``delay`` seconds before the next attempt, at most until the grace ends; a
        :meth:`stop` meanwhile ends the sleep early so that the grace applies at once."""
        until = time.monotonic() + delay
        if self._deadline is None:
            self._stopping.wait(delay)
        if self._deadline is not None:
            time.sleep(max(0.0, min(until, self._deadline) - time.monotonic()))

    def gave_up(self, unwritten: Mapping[Path, int], what: str) -> str:
        """The line that says what was not written, and where, when the grace ran out."""
        where = ", ".join(
            f"{count} {what if count != 1 else what.removesuffix('s')} not written to {path}"
            for path, count in unwritten.items()
        )
        return f"gave up after the {self.grace_s:g} s shutdown grace ({self.reason}): {where}"

    @property
    def exhausted(self) -> bool:
        return self._since is not None and time.monotonic() - self._since >= RETRY_FOR_S

    @property
    def due(self) -> bool:
        """Whether the next attempt may be made now (always, when nothing failed)."""
        return time.monotonic() >= self._next

    def succeeded(self) -> bool:
        """An attempt worked; returns whether it ended a series of failures."""
        recovered = self._since is not None
        self.problem, self._since, self._next = None, None, 0.0
        return recovered
