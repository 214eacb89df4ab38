"""Exponential backoff with jitter for reconnecting live sources."""

from __future__ import annotations

import random

from streamproc.config.settings import BackoffSettings


class Backoff:
    """Delays between reconnect attempts.

    The n-th failure in a row waits ``min(max, initial * factor**(n-1))``, varied by +-``jitter``.
    A connection that stayed healthy for ``reset_after`` seconds before it broke is retried at once
    and starts the series over, so a camera that drops once a day is back within a connect time
    (most breaks are a blip: a session timeout, a stream restarted), while one that flaps backs off.
    """

    def __init__(self, settings: BackoffSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.failures = 0  # failed attempts in a row
        self._rng = rng or random.Random()

    @property
    def exhausted(self) -> bool:
        """True once ``max_attempts`` failures in a row have happened (never when it is 0)."""
        limit = self.settings.max_attempts
        return bool(limit) and self.failures >= limit

    def failed(self, healthy_for: float = 0.0) -> float:
        """Record a failure after ``healthy_for`` seconds of streaming; return the delay to wait."""
        if healthy_for > 0 and healthy_for >= self.settings.reset_after:
            self.failures = 0  # the break itself is not a failed attempt
            return 0.0
        self.failures += 1
        return self.delay(self.failures)

    def delay(self, failures: int) -> float:
        """The delay after ``failures`` failures in a row, jitter included."""
        settings = self.settings
        # the exponent is capped so that weeks of retries cannot overflow a float
        base = min(settings.max, settings.initial * settings.factor ** min(failures - 1, 64))
        spread = settings.jitter * base
        return max(0.0, base + self._rng.uniform(-spread, spread))

    @property
    def bound(self) -> float:
        """The longest any single delay can be."""
        return self.settings.max * (1 + self.settings.jitter)
