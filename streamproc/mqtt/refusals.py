"""Publishes the broker refused (MQTT 5 reason codes >= 0x80, e.g. 0x87 Not authorized by an ACL):
counted per topic and reported in at most one warning per topic per interval."""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger(__name__)

WARN_INTERVAL_S = 60.0


class Refusals:
    """Counts refused publishes by topic; warns once per topic per ``interval`` with the count."""

    def __init__(self, where: str, interval: float = WARN_INTERVAL_S) -> None:
        self.where = where
        self.interval = interval
        self.by_topic: Counter[str] = Counter()
        self._unreported: Counter[str] = Counter()
        self._warned_at: dict[str, float] = {}

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())

    def add(self, topic: str, reason: object) -> None:
        self.by_topic[topic] += 1
        self._unreported[topic] += 1
        now = time.monotonic()
        if now - self._warned_at.get(topic, -float("inf")) >= self.interval:
            self._warn(topic, reason)
            self._warned_at[topic] = now

    def flush(self, reason: object = "refused") -> None:
        """Report what was refused since each topic's last warning (at the end of a run)."""
        for topic in list(self._unreported):
            self._warn(topic, reason)

    def _warn(self, topic: str, reason: object) -> None:
        count = self._unreported.pop(topic, 0)
        if count:
            log.warning(
                "MQTT: %s refused %d message%s on %s (%s); check the broker's ACL for this client"
                " (further refusals on this topic are summed up every %g s)",
                self.where,
                count,
                "" if count == 1 else "s",
                topic,
                reason,
                self.interval,
            )
