"""The publisher behind the mqtt sink: one thread owns the paho client and the connection.

Callers only queue (:meth:`Publisher.publish` never waits on the network). The thread sends queued
messages in order, keeps at most ``max_inflight`` QoS>=1 messages unacknowledged and forgets each
only on its PUBACK/PUBCOMP. When the connection drops, paho keeps those unacknowledged messages and
re-sends them first on reconnect (with the DUP flag; MQTT's at-least-once), then the queue follows,
so order is kept. New messages wait in the bounded :class:`Outbox` meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from streamproc.config.settings import MqttSettings, MqttSinkSettings
from streamproc.mqtt.client import (
    build_client,
    connect,
    default_client_id,
    describe_broker,
    receive_maximum,
    service,
)
from streamproc.mqtt.outbox import Message, Outbox
from streamproc.mqtt.refusals import Refusals
from streamproc.mqtt.topics import OFFLINE, ONLINE, Topics

log = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0  # select() timeout with nothing to do; keep-alive is checked at least this often
OFFLINE_ACK_WAIT_S = 2.0  # at close, how long the retained 'offline' may take to be acknowledged


class Publisher:
    """Publishes queued messages to one broker from its own thread; see the module docstring."""

    def __init__(self, broker: MqttSettings, options: MqttSinkSettings, topics: Topics) -> None:
        self.broker = broker
        self.outbox = Outbox(options.queue_size)
        self._options = options
        self._where = describe_broker(broker)
        self._offline = Message(topics.available, OFFLINE.encode(), options.qos.available, retain=True)
        # sent on every (re)connect, before anything queued: a broker restarted without persistence
        # has forgotten them
        self._births: dict[str, Message] = {
            topics.available: Message(topics.available, ONLINE.encode(), options.qos.available, retain=True)
        }
        self._window: dict[int, Message] = {}  # mid -> sent QoS>=1 message awaiting its acknowledgement
        self._window_limit = options.max_inflight
        self._connected = False
        self._just_connected = False
        self._lost_at = 0.0
        self._closing = threading.Event()
        self._interrupt = threading.Event()  # cuts a reconnect back-off short when close() is called
        self._close_deadline = 0.0
        self.undelivered = 0
        self.published = 0
        self.published_qos0 = 0  # fire and forget: MQTT has no acknowledgement for these
        self.acknowledged = 0
        self.rejected = 0
        self.refusals = Refusals(self._where)
        self.reconnects = 0
        self.client_id = broker.client_id or default_client_id("run")
        self._client = build_client(broker, self.client_id, self._offline)
        self._client.max_inflight_messages = options.max_inflight
        # written by publish() and close() to wake the network thread out of select()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def start(self) -> None:
        """Connect (raising OutputError naming what to fix) and start the network thread."""
        self._window_limit = min(
            self._options.max_inflight, receive_maximum(connect(self._client, self.broker))
        )
        log.info("MQTT: connected to %s as %s", self._where, self.client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._connected = self._just_connected = True
        self._thread.start()

    def publish(self, message: Message) -> None:
        """Queue a message; returns at once whatever the broker is doing."""
        self.outbox.put(message)
        self._wake()

    def add_birth(self, message: Message) -> None:
        """Publish now and again after every reconnect (retained configuration such as discovery)."""
        self._births[message.topic] = message
        self.publish(message)

    def close(self, deadline: float) -> int:
        """Deliver what is queued until ``deadline`` (time.monotonic()), publish 'offline', disconnect.

        Returns how many messages could not be delivered.
        """
        if self._thread.is_alive():
            self._close_deadline = deadline
            self._closing.set()
            self._interrupt.set()
            self._wake()
            self._thread.join()
        self._wake_r.close()
        self._wake_w.close()
        self.refusals.flush()
        return self.undelivered

    def counters(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "queued": len(self.outbox),
            "queued_max": self.outbox.high_water,
            "inflight": len(self._window),
            "published": self.published,
            "published_qos0": self.published_qos0,
            "acknowledged": self.acknowledged,
            "dropped": self.outbox.dropped,
            "coalesced": self.outbox.coalesced,
            "rejected": self.rejected,
            "reconnects": self.reconnects,
        }

    # --- the network thread ---

    def _run(self) -> None:
        delay = self._options.reconnect_min_delay
        while not self._finished():
            if self._client.socket() is None:
                self._interrupt.wait(min(delay, self._time_left()))
                self._interrupt.clear()
                delay = min(delay * 2, self._options.reconnect_max_delay)
                self._reconnect()
                continue
            if self._just_connected:
                self._just_connected = False
                delay = self._options.reconnect_min_delay
                for birth in self._births.values():
                    self._client.publish(birth.topic, birth.payload, birth.qos, birth.retain)
            self._feed()
            service(self._client, min(IDLE_WAIT_S, self._time_left()), self._wake_r)
        self._finish()

    def _feed(self) -> None:
        while self._connected and len(self._window) < self._window_limit:
            message = self.outbox.pop()
            if message is None:
                return
            info = self._client.publish(message.topic, message.payload, message.qos, message.retain)
            self.published += 1
            if message.qos:
                self._window[info.mid] = message
            else:
                self.published_qos0 += 1

    def _reconnect(self) -> None:
        try:
            self._client.reconnect()
        except OSError as exc:  # includes TLS errors; the broker may still be down
            log.debug("MQTT: reconnecting to %s failed: %s", self._where, exc)

    def _finished(self) -> bool:
        if not self._closing.is_set():
            return False
        drained = not self._window and not len(self.outbox)
        return drained or self._time_left() <= 0

    def _time_left(self) -> float:
        if not self._closing.is_set():
            return float("inf")
        return max(0.0, self._close_deadline - time.monotonic())

    def _finish(self) -> None:
        """Mark the instance offline (the broker keeps the last will for unclean ends) and hang up."""
        self.undelivered = len(self.outbox) + len(self._window)
        if self._connected:
            info = self._client.publish(
                self._offline.topic, self._offline.payload, self._offline.qos, self._offline.retain
            )
            deadline = time.monotonic() + OFFLINE_ACK_WAIT_S
            while self._connected and not info.is_published() and time.monotonic() < deadline:
                service(self._client, 0.1)
        if self._client.socket() is not None:
            self._client.disconnect()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # the buffer is full (already awake) or we are closing
            self._wake_w.send(b"\0")

    # --- paho callbacks (always run in the network thread, inside service()) ---

    def _on_connect(self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT: %s refused the reconnection: %s", self._where, reason)
            return
        self._window_limit = min(self._options.max_inflight, receive_maximum(props))
        self.reconnects += 1
        self._connected = self._just_connected = True
        log.info(
            "MQTT: reconnected to %s after %.1f s; sending %d queued, re-sending %d unacknowledged",
            self._where,
            time.monotonic() - self._lost_at,
            len(self.outbox),
            len(self._window),
        )

    def _on_disconnect(
        self, _c: paho.Client, _u: Any, flags: paho.DisconnectFlags, reason: ReasonCode, _p: Any
    ) -> None:
        was_connected, self._connected = self._connected, False
        if was_connected and not self._closing.is_set():
            self._lost_at = time.monotonic()
            why = (
                f"the broker said: {reason}"
                if flags.is_disconnect_packet_from_server
                else "connection closed"
            )
            log.warning(
                "MQTT: lost the connection to %s (%s); queueing up to %d messages while reconnecting",
                self._where,
                why,
                self.outbox.capacity,
            )

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        message = self._window.pop(mid, None)
        if message is None:
            return  # QoS 0, or a birth message: nothing waits for it
        if reason.is_failure:  # MQTT 5 reason code >= 0x80: the broker will not deliver it
            self.rejected += 1
            self.refusals.add(message.topic, reason)
        else:
            self.acknowledged += 1
