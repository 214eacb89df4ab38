"""What the driver of a camera run writes itself: ``worker_lost`` ends and the aggregate availability.

The driver opens the same JSON Lines and MQTT outputs as the workers. Its MQTT connection has no
instance name, so its birth and last will are ``{prefix}/available``: the aggregate, ``online``
while the driver runs and at least one worker group is up, while each group has its own
``{prefix}/{group}/available``. Its ``{prefix}/stats`` carry the whole system's numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from streamproc.config.settings import Settings
from streamproc.core.errors import StreamprocError
from streamproc.core.events import Event
from streamproc.distributed.group_worker import reports_track_ends
from streamproc.media.pixels import PixelPlan
from streamproc.sinks.base import Sink, StatsProvider
from streamproc.sinks.kinds import make_sink
from streamproc.sinks.mqtt import MqttSink

log = logging.getLogger(__name__)


class DriverOutputs:
    def __init__(self, settings: Settings, stats: StatsProvider) -> None:
        self._outputs: dict[int, Sink] = {  # by their index in settings.sinks, as the workers report
            index: make_sink(sink, settings, stats)
            for index, sink in enumerate(settings.sinks)
            if reports_track_ends(sink)
        }
        self._sinks = list(self._outputs.values())
        self._mqtt = next((sink for sink in self._sinks if isinstance(sink, MqttSink)), None)
        self._available = True

    def open(self) -> None:
        pixels = PixelPlan.for_consumers(self._sinks)
        for sink in self._sinks:
            sink.open(pixels)

    def send(self, events: Sequence[Event], outputs: Collection[int]) -> None:
        """Write ``events`` to the outputs with these indexes."""
        for index in outputs:
            self._outputs[index].handle_events(events)

    def set_available(self, up: bool) -> None:
        """The aggregate availability: published when it changes."""
        if up != self._available and self._mqtt is not None and self._mqtt.publish_availability(up):
            self._available = up

    def close(self) -> None:
        for sink in self._sinks:
            try:
                sink.close()
            except StreamprocError as exc:  # one output failing must not keep the others from closing
                log.error("closing %s: %s", sink.name, exc)
