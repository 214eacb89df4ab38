"""Reconnect backoff: growth, cap, jitter, reset after a healthy period, attempt limit."""

from __future__ import annotations

import random

import pytest

from streamproc.capture.backoff import Backoff
from streamproc.config.settings import BackoffSettings


def test_delays_grow_by_factor_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(BackoffSettings(initial=0.5, factor=2, max=3, jitter=0))
    assert [backoff.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_stays_within_its_fraction_and_varies() -> None:
    settings = BackoffSettings(initial=1, factor=2, max=8, jitter=0.25)
    backoff = Backoff(settings, random.Random(7))
    delays = [backoff.delay(4) for _ in range(200)]
    assert all(6.0 <= delay <= 10.0 for delay in delays)
    assert max(delays) - min(delays) > 2.0, "jitter spreads reconnects out"
    assert backoff.bound == pytest.approx(10.0)


def test_healthy_period_retries_at_once_and_resets_the_series_and_a_short_one_does_not() -> None:
    backoff = Backoff(BackoffSettings(initial=1, factor=2, max=60, jitter=0, reset_after=30))
    assert [backoff.failed() for _ in range(3)] == [1, 2, 4]
    assert backoff.failed(healthy_for=5) == 8  # flapping: keeps backing off
    assert backoff.failed(healthy_for=31) == 0  # was fine for a while: at once, then starts over
    assert backoff.failed() == 1


def test_attempt_limit() -> None:
    backoff = Backoff(BackoffSettings(max_attempts=2))
    backoff.failed()
    assert not backoff.exhausted
    backoff.failed()
    assert backoff.exhausted
    forever = Backoff(BackoffSettings(max_attempts=0))
    for _ in range(10_000):  # weeks of retries: no overflow, never exhausted
        assert forever.failed() <= forever.bound
    assert not forever.exhausted
