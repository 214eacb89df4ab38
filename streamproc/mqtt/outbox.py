"""Messages waiting for the broker: a bounded FIFO that drops the oldest when full, and says so."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 10.0  # while the queue overflows, one warning this often, not one per message


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    latest_value: bool = False  # a newer message on the same topic makes this one stale
    queued_at: float = field(default_factory=time.monotonic, compare=False)


class Outbox:
    """Thread-safe FIFO of messages not yet handed to the network.

    When it holds ``capacity`` messages the oldest is dropped, counted in ``dropped`` and logged.
    A ``latest_value`` message replaces a queued one on the same topic (counted in ``coalesced``):
    while the broker is away, a face count that changed a hundred times costs one slot, not a hundred.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.dropped = 0
        self.coalesced = 0
        self.high_water = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[int, Message] = OrderedDict()
        self._latest: dict[str, int] = {}  # topic -> sequence number of its queued latest value
        self._sequence = itertools.count()
        self._drops_logged = 0
        self._drop_logged_at = -DROP_LOG_INTERVAL_S

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, message: Message) -> None:
        with self._lock:
            if message.latest_value:
                stale = self._latest.pop(message.topic, None)
                if stale is not None:
                    del self._items[stale]
                    self.coalesced += 1
            number = next(self._sequence)
            self._items[number] = message
            if message.latest_value:
                self._latest[message.topic] = number
            if len(self._items) > self.capacity:
                self._forget(*self._items.popitem(last=False))
                self.dropped += 1
            self.high_water = max(self.high_water, len(self._items))
            unlogged = self._unlogged_drops()
        if unlogged:
            log.warning(
                "MQTT queue full (%d messages): dropped the %d oldest (%d in all); the broker is not"
                " taking messages fast enough or is unreachable",
                self.capacity,
                unlogged,
                self.dropped,
            )

    def pop(self) -> Message | None:
        """The oldest message, or None when empty."""
        with self._lock:
            if not self._items:
                return None
            number, message = self._items.popitem(last=False)
            self._forget(number, message)
            return message

    def _forget(self, number: int, message: Message) -> None:
        if message.latest_value and self._latest.get(message.topic) == number:
            del self._latest[message.topic]

    def _unlogged_drops(self) -> int:
        """Drops not yet reported, when it is time to report them (call with the lock held)."""
        now = time.monotonic()
        if self.dropped == self._drops_logged or now - self._drop_logged_at < DROP_LOG_INTERVAL_S:
            return 0
        unlogged, self._drops_logged, self._drop_logged_at = (
            self.dropped - self._drops_logged,
            self.dropped,
            now,
        )
        return unlogged
