"""MQTT sink: events, face counts, source status, optional snapshots and detections, periodic stats.

``handle`` only builds payloads and queues them (see streamproc.mqtt.publisher): a slow or absent
broker never holds up inference.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamproc.config.settings import SHUTDOWN_GRACE_S, MqttSettings, MqttSinkSettings
from streamproc.core.errors import OutputError
from streamproc.core.events import Event
from streamproc.core.frames import FrameResult, StatusEvent
from streamproc.media.crops import context_crop, encode_jpeg
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan
from streamproc.mqtt.discovery import discovery_configs
from streamproc.mqtt.outbox import Message
from streamproc.mqtt.publisher import Publisher
from streamproc.mqtt.topics import LATEST_VALUE, OFFLINE, ONLINE, RETAINED, Kind, Topics
from streamproc.sinks.base import Sink, StatsProvider
from streamproc.sinks.records import frame_record, status_record

log = logging.getLogger(__name__)

SNAPSHOT_MARGIN = 0.25  # widen the face box by this fraction of its size on each side


def to_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Throttle:
    """At most one 'due' per key every ``interval`` seconds (0: always due)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < self.interval:
            return False
        self._last[key] = now
        return True


class MqttSink(Sink):
    """Maps results and source status to messages under the topic prefix (see streamproc.mqtt.topics)."""

    def __init__(
        self,
        settings: MqttSinkSettings,
        broker: MqttSettings,
        stats: StatsProvider | None = None,
        grace_s: float = SHUTDOWN_GRACE_S,
    ) -> None:
        self.settings = settings
        self.grace_s = grace_s  # once the run stops, how long what is queued may take to be delivered
        self._deadline: float | None = None  # set by stopping()
        self.broker = broker
        self.name = f"mqtt:{broker.host}:{broker.port}"
        self.topics = Topics(broker.topic_prefix, broker.instance)
        self.publisher: Publisher | None = None
        self._stats = stats
        self._faces: dict[str, int] = {}  # source -> face count last published
        self._introduced: set[str] = set()
        self._snapshots = Throttle(settings.snapshot_interval)
        self._detections = Throttle(settings.detections_interval)
        self._stop_stats = threading.Event()
        self._stats_thread: threading.Thread | None = None
        self._bgr: BgrReader | None = None

    @property
    def backlog(self) -> int | None:
        """Messages waiting for the broker: queued in the outbox or sent and not yet acknowledged."""
        if self.publisher is None:
            return None
        counters = self.publisher.counters()
        return int(counters["queued"]) + int(counters["inflight"])

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR}) if self.settings.snapshot else frozenset()  # best-face JPEG

    def open(self, pixels: PixelPlan) -> None:
        if self.settings.snapshot:
            self._bgr = pixels.bgr(self)
        self.publisher = Publisher(self.broker, self.settings, self.topics)
        self.publisher.start()
        if self._stats is not None and self.settings.stats_interval > 0:
            self._stats_thread = threading.Thread(target=self._stats_loop, name="mqtt-stats", daemon=True)
            self._stats_thread.start()

    def handle(self, result: FrameResult) -> None:
        source = result.frame.source_id
        self._introduce(source)
        faces = len(result.detections)
        if self._faces.get(source) != faces:
            self._faces[source] = faces
            self._send("faces", self.topics.source(source, "faces"), str(faces).encode())
        if self.settings.detections and self._detections.due(source):
            self._send("detections", self.topics.source(source, "detections"), to_json(frame_record(result)))
        if self.settings.snapshot and faces and self._snapshots.due(source):
            jpeg = self._best_face_jpeg(result)
            if jpeg is not None:
                self._send("snapshot", self.topics.source(source, "snapshot"), jpeg)

    def handle_events(self, events: Sequence[Event]) -> None:
        """Track and scene events, also the ``end`` events sent when a source finishes."""
        for event in events:
            self._introduce(event.source_id)
            self._send("events", self.topics.events, to_json(event.to_dict()))

    def handle_status(self, event: StatusEvent) -> None:
        self._introduce(event.source_id)
        self._send("status", self.topics.source(event.source_id, "status"), to_json(status_record(event)))

    @property
    def refused(self) -> int:
        """Publishes the broker refused (MQTT 5 only: 3.1.1 brokers drop them silently)."""
        return self.publisher.rejected if self.publisher is not None else 0

    def publish_availability(self, up: bool) -> bool:
        """Publish this connection's availability (retained, on its ``available`` topic) beside the
        birth and last will the publisher sends; False while the sink is not open."""
        if self.publisher is None:
            return False
        payload = (ONLINE if up else OFFLINE).encode()
        self.publisher.publish(
            Message(self.topics.available, payload, self.settings.qos.available, retain=True)
        )
        return True

    def stopping(self) -> None:
        """The grace starts now, as the other sinks' do: they run side by side, not one after another."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.grace_s
            backlog = self.backlog
            if backlog:
                log.info(
                    "MQTT: stopping with %d messages not yet delivered to %s; trying for %g s more"
                    " (shutdown_grace)",
                    backlog,
                    self.name,
                    self.grace_s,
                )

    def close(self) -> None:
        if self.publisher is None:
            return
        if self._stats_thread is not None:
            self._stop_stats.set()
            self._stats_thread.join()
            self._publish_stats()  # the run's final numbers
        self.stopping()  # closed without a stop (a file run that ended): the grace starts now
        assert self._deadline is not None
        undelivered = self.publisher.close(self._deadline)
        counters = self.publisher.counters()
        log.log(
            logging.WARNING if counters["dropped"] else logging.INFO, "MQTT: %s", delivery_summary(counters)
        )
        refused_events = self.publisher.refusals.by_topic[self.topics.events]
        if refused_events:  # events are what the sink is for: refusing them fails the run
            raise OutputError(
                f"{self.name} refused {refused_events} event messages on {self.topics.events}"
                " (MQTT 5 reason code >= 0x80, e.g. an ACL): allow this client to publish there"
            )
        if undelivered:
            raise OutputError(
                f"gave up after the {self.grace_s:g} s shutdown grace: {undelivered} MQTT messages"
                f" not delivered to {self.name} (the broker is unreachable)"
            )

    def _introduce(self, source: str) -> None:
        """The first time a source shows up: announce it to Home Assistant if asked to."""
        if source in self._introduced or not self.settings.home_assistant.enabled:
            return
        self._introduced.add(source)
        assert self.publisher is not None
        for topic, config in discovery_configs(self.topics, source, self.settings.home_assistant).items():
            self.publisher.add_birth(self._message("discovery", topic, to_json(config)))

    def _send(self, kind: Kind, topic: str, payload: bytes) -> None:
        assert self.publisher is not None, "open() first"
        self.publisher.publish(self._message(kind, topic, payload))

    def _message(self, kind: Kind, topic: str, payload: bytes) -> Message:
        qos = getattr(self.settings.qos, kind)
        return Message(topic, payload, qos, retain=kind in RETAINED, latest_value=kind in LATEST_VALUE)

    def _best_face_jpeg(self, result: FrameResult) -> bytes | None:
        """The highest-scoring face with some margin, cut from the full-resolution frame (None when
        the box lies outside the picture)."""
        assert self._bgr is not None, "open() first"
        box = result.detections.boxes[int(np.argmax(result.detections.scores))]
        crop = context_crop(self._bgr(result.frame), box, SNAPSHOT_MARGIN)
        return None if crop is None else encode_jpeg(crop, self.settings.snapshot_quality)

    def _stats_loop(self) -> None:
        while not self._stop_stats.wait(self.settings.stats_interval):
            self._publish_stats()

    def _publish_stats(self) -> None:
        assert self._stats is not None and self.publisher is not None
        stats = {"time": round(time.time(), 3), **self._stats(), "mqtt": self.publisher.counters()}
        self._send("stats", self.topics.stats, to_json(stats))


def delivery_summary(counters: dict[str, Any]) -> str:
    """What was published and what of it the broker acknowledged, counting only what it owes: a
    QoS 0 message (stats, snapshots) is never acknowledged, by MQTT's design."""
    published, unowed = counters["published"], counters["published_qos0"]
    owed, acknowledged = published - unowed, counters["acknowledged"]
    parts = [f"{published} messages published"]
    if owed:
        parts.append(f"{'all' if acknowledged == owed else acknowledged} of {owed} at QoS 1/2 acknowledged")
    if counters["rejected"]:
        parts.append(f"{counters['rejected']} refused")
    if unowed:
        parts.append(f"{unowed} at QoS 0 (MQTT does not acknowledge those)")
    parts.append(f"{counters['dropped']} dropped (queue full), {counters['reconnects']} reconnects")
    return "; ".join(parts)
