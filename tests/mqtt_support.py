"""MQTT test support: real Mosquitto brokers on free ports, a test CA made with openssl, a subscriber
that records what arrives, and track events derived from real detections.

Loaded as a pytest plugin from conftest.py, so its fixtures are available to every test module.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from streamproc.config.settings import (
    MqttSettings,
    MqttSinkSettings,
    Settings,
    SourceSettings,
    TrackingSettings,
)
from streamproc.core.frames import FrameResult, StatusEvent
from streamproc.media.pixels import PixelFormat, PixelPlan
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import Pipeline
from streamproc.sinks.base import Sink
from streamproc.sinks.kinds import make_sink

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
BROKER_INFLIGHT = 20  # QoS>=1 messages the broker sends a subscriber before waiting for its acks


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


# --- a test certificate authority -------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: verifying the broker against it must fail


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    ext = directory / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
    )
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key, cwd=directory)
    _openssl("req", "-new", "-x509", "-key", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
             "-extensions", "v3", "-config", _req_config(directory, ext), cwd=directory)  # fmt: skip
    return cert, key


def _req_config(directory: Path, ext: Path) -> Path:
    config = directory / f"{ext.stem}.cnf"
    config.write_text("[req]\ndistinguished_name=dn\n[dn]\n[v3]\n" + ext.read_text())
    return config


def _make_leaf(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" + extensions
    )
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key, cwd=directory)
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={name}", cwd=directory)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", cert,
             "-days", "2", "-extfile", ext, cwd=directory)  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    assert shutil.which("openssl"), "openssl is needed to make the test CA (scripts/setup.sh installs it)"
    directory = tmp_path_factory.mktemp("pki")
    ca = _make_ca(directory, "streamproc-test-ca")
    server = _make_leaf(
        directory, "localhost", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    client = _make_leaf(directory, "streamproc-test-client", ca, "extendedKeyUsage=clientAuth\n")
    other_ca, _ = _make_ca(directory, "unrelated-ca")
    return Pki(ca[0], server[0], server[1], client[0], client[1], other_ca)


# --- Mosquitto --------------------------------------------------------------------------------


@dataclass
class Broker:
    """One Mosquitto process; ``stop`` and ``start`` again keep its port and (persisted) state."""

    workdir: Path
    port: int
    tls_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log, start_new_session=True
            )
        wait_until(self._listening, 10, f"mosquitto on port {self.port} (log: {self.log})")

    def stop(self) -> None:
        """SIGTERM (Mosquitto saves its persistence file) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"mosquitto exited at start: {self.log.read_text()[-2000:]}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0


BrokerFactory = Callable[..., Broker]


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start Mosquitto brokers: plain, with a password file, with a TLS listener, persistent."""
    brokers: list[Broker] = []

    def make(users: dict[str, str] | None = None, pki: Pki | None = None, persistent: bool = False) -> Broker:
        workdir = tmp_path / f"broker{len(brokers)}"
        workdir.mkdir()
        broker = Broker(workdir, free_port(), free_port() if pki else None)
        lines = [
            f"user {getpass.getuser()}",  # as root Mosquitto would otherwise switch to user 'mosquitto'
            f"log_dest file {broker.log}",
            "max_queued_messages 100000",  # offline persistent subscribers must not lose anything
            f"max_inflight_messages {BROKER_INFLIGHT}",
            f"persistence {'true' if persistent else 'false'}",
            f"persistence_location {workdir}/",
            f"allow_anonymous {'false' if users else 'true'}",
            f"listener {broker.port} 127.0.0.1",
        ]
        if users:
            passwords = workdir / "passwords"
            for name, password in users.items():
                create = ["-c"] if not passwords.exists() else []
                subprocess.run(["mosquitto_passwd", *create, "-b", passwords, name, password], check=True)
            lines.insert(0, f"password_file {passwords}")
        if pki:
            lines += [
                f"listener {broker.tls_port} 127.0.0.1",
                f"cafile {pki.ca}",
                f"certfile {pki.server_cert}",
                f"keyfile {pki.server_key}",
                "require_certificate true",
            ]
        broker.config.write_text("\n".join(lines) + "\n")
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> Broker:
    return broker_factory()


# --- a recording subscriber -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.time() on arrival


class Recorder:
    """Subscribes (QoS 2) and records every message in arrival order; reconnects by itself.

    ``persistent`` keeps the session on the broker across disconnects, so messages published while
    this subscriber is away are queued for it (as a long-running Home Assistant would see them).
    """

    def __init__(
        self,
        port: int,
        topics: tuple[str, ...] = ("#",),
        persistent: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"recorder-{uuid.uuid4().hex[:8]}",
            clean_session=not persistent,
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the test subscriber could not subscribe"

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        assert not reason.is_failure, reason
        client.subscribe([(topic, 2) for topic in self._topics])

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append(Received(message.topic, message.payload, bool(message.retain), time.time()))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [message for message in self.received if message.topic == topic]

    def texts(self, topic: str) -> list[str]:
        return [message.payload.decode() for message in self.on(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorders() -> Iterator[Callable[..., Recorder]]:
    """Make subscribers that are closed after the test."""
    made: list[Recorder] = []

    def make(
        port: int,
        topics: tuple[str, ...] = ("#",),
        persistent: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> Recorder:
        made.append(Recorder(port, topics, persistent, auth))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


# --- events from real detections --------------------------------------------------------------


@dataclass(frozen=True)
class DerivedEvent:
    """A track event with the contract the mqtt sink relies on: ``type``, ``source_id``, ``track_id``,
    ``event_id`` and ``to_dict()``."""

    type: str
    source_id: str
    track_id: int
    frame: int
    box: tuple[float, ...]
    score: float
    wall_time: float

    @property
    def event_id(self) -> str:
        return f"{self.source_id}-{self.track_id}-{self.frame}-{self.type}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "type": self.type,
            "event_id": self.event_id,
            "track_id": self.track_id,
            "source_id": self.source_id,
            "frame": self.frame,
            "box": [round(value, 2) for value in self.box],
            "score": round(self.score, 4),
            "wall_time": round(self.wall_time, 6),
        }


class FaceRankEvents:
    """Deterministic stand-in for tracking: track k is the k-th face from the left. ``new`` when a
    rank first appears, ``update`` on every frame it stays, ``end`` when it is gone."""

    def __init__(self) -> None:
        self._active: dict[str, set[int]] = {}

    def __call__(self, result: FrameResult) -> tuple[DerivedEvent, ...]:
        source, frame = result.frame.source_id, result.frame.index
        detections = result.detections
        order = sorted(range(len(detections)), key=lambda i: float(detections.boxes[i][0]))
        active = self._active.setdefault(source, set())
        events = []
        for rank, index in enumerate(order):
            kind = "update" if rank in active else "new"
            box = tuple(float(v) for v in detections.boxes[index])
            events.append(
                DerivedEvent(kind, source, rank, frame, box, float(detections.scores[index]), time.time())
            )
        for rank in sorted(active - set(range(len(order)))):
            events.append(DerivedEvent("end", source, rank, frame, (), 0.0, time.time()))
        self._active[source] = set(range(len(order)))
        return tuple(events)


@dataclass
class WithEvents(Sink):
    """Wraps a sink: after each result it hands the sink events derived from the result's faces (many,
    for tests of delivery under load) and passes on any others; what was handed over is in ``sent``."""

    inner: Sink
    pace_s: float = 0.0  # sleep per frame: file runs wait for sinks, so this paces the whole run
    sent: list[dict[str, Any]] = field(default_factory=list)
    derive: FaceRankEvents = field(default_factory=FaceRankEvents)

    def __post_init__(self) -> None:
        self.name = self.inner.name

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return self.inner.pixel_needs()  # MQTT snapshots crop the frame

    def open(self, pixels: PixelPlan) -> None:
        self.inner.open(pixels)

    def handle(self, result: FrameResult) -> None:
        if self.pace_s:
            time.sleep(self.pace_s)
        self.inner.handle(result)
        self.handle_events(self.derive(result))

    def handle_events(self, events: Sequence[Any]) -> None:
        self.sent.extend(event.to_dict() for event in events)
        self.inner.handle_events(events)

    def handle_status(self, event: StatusEvent) -> None:
        self.inner.handle_status(event)

    def close(self) -> None:
        self.inner.close()


def mqtt_settings(video: Path, port: int, **sink: Any) -> Settings:
    """One file source, one mqtt sink (options in ``sink``), broker on 127.0.0.1:``port``."""
    broker = sink.pop("broker", {})
    return Settings(
        sources=[SourceSettings(url=str(video))],
        sinks=[MqttSinkSettings(type="mqtt", **sink)],
        mqtt=MqttSettings(host="127.0.0.1", port=port, **broker),
        progress=False,
    )


def pipeline_with_events(settings: Settings, pace_s: float = 0.0) -> tuple[Pipeline, WithEvents]:
    """An opened pipeline whose (single) sink receives many events; see :class:`WithEvents`.

    The tracker's own events are few (new, a rate-limited update or two, end); these tests check
    delivery under load, so tracking is off and every frame's faces give derived events instead
    (real tracking events over MQTT: tests/test_events.py).
    """
    untracked = settings.model_copy(update={"tracking": TrackingSettings(enabled=False), "sinks": []})
    built: list[Pipeline] = []  # the sink publishes the pipeline's stats, which exists only once built
    inner = make_sink(settings.sinks[0], settings, lambda: built[0].stats_snapshot())
    wrapped = WithEvents(inner, pace_s)
    built.append(build_pipeline(untracked, extra_sinks=[wrapped]))
    return built[0], wrapped
