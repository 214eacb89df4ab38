"""When a sink tries again after an output error (disk full) on a live run: growing delays, a
limit, and the problem to report meanwhile (``/readyz`` shows it)."""

from __future__ import annotations

import time

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
RETRY_FOR_S = 600.0  # without one success for this long, the sink fails for good


class Retry:
    """Delays of RETRY_FIRST_S doubling to RETRY_MAX_S between attempts, for up to RETRY_FOR_S."""

    def __init__(self) -> None:
        self.problem: str | None = None  # why the output is not being written right now
        self._delay = RETRY_FIRST_S
        self._next = 0.0
        self._since: float | None = None

    def failed(self, problem: str) -> float:
        """An attempt failed: remember why; returns the seconds to wait before the next."""
        now = time.monotonic()
        if self._since is None:
            self._since, self._delay = now, RETRY_FIRST_S
        else:
            self._delay = min(self._delay * 2, RETRY_MAX_S)
        self.problem = f"{problem}; retrying"
        self._next = now + self._delay
        return self._delay

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
