"""The topic layout under the configured prefix, and how each kind of message is published.

| topic                        | kind       | retained | payload                              |
| {prefix}/available           | available  | yes      | ``online`` / ``offline`` (last will) |
| {prefix}/{instance}/available| available  | yes      | the same, per instance (``mqtt.instance``) |
| {prefix}/events              | events     | no       | one event as JSON                    |
| {prefix}/{source}/faces      | faces      | yes      | current face count, e.g. ``2``       |
| {prefix}/{source}/status     | status     | yes      | source state as JSON                 |
| {prefix}/{source}/snapshot   | snapshot   | yes      | JPEG of the best face (optional)     |
| {prefix}/{source}/detections | detections | no       | per-frame record (optional)          |
| {prefix}/stats               | stats      | no       | run statistics as JSON               |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["available", "events", "faces", "status", "snapshot", "stats", "detections", "discovery"]

# Retained kinds hold a current value for late subscribers. "Latest value" kinds may be coalesced
# while the broker is away: a queued older value of the same topic is replaced, not sent (it is stale).
RETAINED: frozenset[Kind] = frozenset({"available", "faces", "status", "snapshot", "discovery"})
LATEST_VALUE: frozenset[Kind] = frozenset({"faces", "status", "snapshot", "stats", "discovery"})

ONLINE = "online"
OFFLINE = "offline"

_NOT_IN_A_LEVEL = re.compile(r"[/+#\s\x00]")


def topic_level(name: str) -> str:
    """A source id made safe as one topic level ('/', '+', '#' and spaces become '_')."""
    return _NOT_IN_A_LEVEL.sub("_", name) or "_"


@dataclass(frozen=True)
class Topics:
    prefix: str
    instance: str | None = None  # one of several processes (a distributed run's worker group)

    @property
    def available(self) -> str:
        if self.instance is not None:
            return f"{self.prefix}/{topic_level(self.instance)}/available"
        return f"{self.prefix}/available"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/stats"

    def source(self, source_id: str, leaf: Literal["faces", "status", "snapshot", "detections"]) -> str:
        return f"{self.prefix}/{topic_level(source_id)}/{leaf}"
