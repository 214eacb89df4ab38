"""The mqtt sink and ``streamproc events`` against real Mosquitto brokers (see mqtt_support.py)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as paho
import pytest
from conftest import REPO, CliRunner
from mqtt_support import (
    BROKER_INFLIGHT,
    Broker,
    BrokerFactory,
    Pki,
    Recorder,
    mqtt_settings,
    pipeline_with_events,
    wait_until,
)
from paho.mqtt.enums import CallbackAPIVersion

from streamproc.config.settings import MqttSettings, MqttSinkSettings
from streamproc.mqtt.outbox import Message
from streamproc.mqtt.publisher import Publisher
from streamproc.mqtt.topics import Topics
from streamproc.pipeline.run import RunReport

pytestmark = pytest.mark.slow  # a real Mosquitto broker, outages included

RecorderFactory = Any  # the `recorders` fixture: (port, topics, persistent, auth) -> Recorder


@pytest.fixture(scope="module")
def enter_exit_video(tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType) -> Path:
    """4 s, 100 frames: no face, one face, two, one, none (face counts 0, 1, 2, 1, 0)."""
    path = tmp_path_factory.mktemp("mqtt") / "enter.mp4"
    return sample_maker.make_sample(path, scenario="enter_exit")


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType) -> Path:
    """30 s, 750 small frames with two faces throughout."""
    path = tmp_path_factory.mktemp("mqtt") / "long.mp4"
    return sample_maker.make_sample(path, width=320, height=180, seconds=30)


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def json_payloads(recorder: Recorder, topic: str) -> list[dict[str, Any]]:
    return [json.loads(message.payload) for message in recorder.on(topic)]


def changes(values: list[int]) -> list[int]:
    return [value for value, _ in itertools.groupby(values)]


def run_in_thread(pipeline: Any) -> tuple[threading.Thread, list[RunReport]]:
    reports: list[RunReport] = []
    thread = threading.Thread(target=lambda: reports.append(pipeline.run()), daemon=True)
    thread.start()
    return thread, reports


def test_file_run_publishes_what_the_jsonl_sink_writes(
    tmp_path: Path, broker: Broker, recorders: RecorderFactory, enter_exit_video: Path, run_cli: CliRunner
) -> None:
    recorder = recorders(broker.port, ("streamproc/#",))
    jsonl = tmp_path / "out.jsonl"
    config = write_yaml(
        tmp_path / "run.yaml",
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        f"sinks:\n  - {{type: jsonl, path: {jsonl}}}\n  - {{type: mqtt, stats_interval: 0.2}}\n",
    )
    result = run_cli("run", enter_exit_video, "-c", config, "--no-progress")
    assert result.returncode == 0, result.stderr
    wait_until(lambda: recorder.texts("streamproc/available")[-1:] == ["offline"], 10, "offline at exit")

    lines = read_jsonl(jsonl)
    # the events (new/update/end/scene) are exactly the JSONL's event lines, in the same order
    events = [line for line in lines if line["type"] not in ("frame", "status", "summary")]
    assert json_payloads(recorder, "streamproc/events") == events
    # status changes go to their own topic and to the JSONL's status lines alike
    written_states = [line["state"] for line in lines if line["type"] == "status"]
    # one retained face count per change of the count, as the frames had it
    frames = [line for line in lines if line["type"] == "frame"]
    counts = [int(text) for text in recorder.texts("streamproc/enter/faces")]
    assert counts == changes([len(frame["faces"]) for frame in frames])
    assert max(counts) == 2 and counts[0] == counts[-1] == 0
    states = [status["state"] for status in json_payloads(recorder, "streamproc/enter/status")]
    assert states == written_states == ["streaming", "stopped"]
    assert recorder.texts("streamproc/available") == ["online", "offline"]
    final = json_payloads(recorder, "streamproc/stats")[-1]
    assert final["sources"]["enter"]["frames_processed"] == len(frames) == 100
    assert final["mqtt"]["dropped"] == 0 and final["mqtt"]["connected"] is True
    # the summary counts acknowledgements against what is owed one: QoS 0 (the stats) never is
    summary = re.search(
        r"MQTT: (\d+) messages published; all of (\d+) at QoS 1/2 acknowledged; (\d+) at QoS 0 \(MQTT does"
        r" not acknowledge those\); 0 dropped \(queue full\), 0 reconnects",
        result.stderr,
    )
    assert summary, result.stderr
    published, owed, unowed = map(int, summary.groups())
    assert owed == len(events) + len(counts) + len(states) and unowed == len(recorder.on("streamproc/stats"))
    assert published == owed + unowed


@pytest.mark.parametrize(("protocol", "qos"), [("3.1.1", 1), ("5", 2)])
def test_every_event_arrives_once_in_order(
    broker: Broker, recorders: RecorderFactory, enter_exit_video: Path, protocol: str, qos: int
) -> None:
    recorder = recorders(broker.port, ("streamproc/events",))
    settings = mqtt_settings(
        enter_exit_video, broker.port, qos={"events": qos}, broker={"protocol": protocol}
    )
    pipeline, sink = pipeline_with_events(settings)
    report = pipeline.run()
    assert report.ok, report.problems()
    assert len(sink.sent) > 50, "the clip yields new, update and end events"
    assert {event["type"] for event in sink.sent} == {"new", "update", "end"}
    wait_until(lambda: len(recorder.on("streamproc/events")) >= len(sink.sent), 10, "every event")
    assert json_payloads(recorder, "streamproc/events") == sink.sent
    latencies = [m.at - json.loads(m.payload)["wall_time"] for m in recorder.on("streamproc/events")]
    assert float(np.percentile(latencies, 95)) < 0.5, "events reach subscribers promptly"


def test_broker_outage_at_qos1_loses_nothing_and_keeps_order(
    broker_factory: BrokerFactory, recorders: RecorderFactory, long_video: Path
) -> None:
    broker = broker_factory(persistent=True)
    # a persistent session: the broker keeps what arrives while this subscriber reconnects too
    recorder = recorders(broker.port, ("streamproc/events", "streamproc/long/faces"), persistent=True)
    settings = mqtt_settings(long_video, broker.port, reconnect_min_delay=0.2, reconnect_max_delay=0.5)
    pipeline, sink = pipeline_with_events(settings, pace_s=0.008)  # <= 125 fps: the run outlasts the outage
    publisher = sink.inner.publisher
    thread, reports = run_in_thread(pipeline)

    wait_until(lambda: len(recorder.on("streamproc/events")) >= 100, 20, "events before the outage")
    broker.stop()
    stopped_at, frames_at_stop = time.monotonic(), pipeline.stats.source("long").frames_processed
    wait_until(lambda: not publisher.counters()["connected"], 5, "the sink to notice the outage")
    wait_until(lambda: time.monotonic() - stopped_at >= 3.0, 5, "a few seconds of outage")
    queued_in_outage = publisher.counters()["queued"]
    frames_in_outage = pipeline.stats.source("long").frames_processed - frames_at_stop
    assert thread.is_alive(), "the run must outlast the outage (pace it more)"
    broker.start()

    thread.join(60)
    assert reports and reports[0].ok, reports and reports[0].problems()
    assert frames_in_outage > 50, "inference went on while the broker was away"
    assert queued_in_outage > 50, "events waited in the queue"
    sent_ids = [event["event_id"] for event in sink.sent]
    wait_until(
        lambda: (
            len({json.loads(m.payload)["event_id"] for m in recorder.on("streamproc/events")})
            >= len(sent_ids)
        ),
        20,
        "every event after the outage",
    )
    received_ids = [json.loads(m.payload)["event_id"] for m in recorder.on("streamproc/events")]
    first_seen = list(dict.fromkeys(received_ids))
    assert first_seen == sent_ids, "every event, in order"
    # at-least-once: only messages unacknowledged when the broker went down may come twice, on the
    # way in (the sink's window) or out (the broker's window towards this subscriber)
    duplicates = len(received_ids) - len(first_seen)
    assert duplicates <= settings.sinks[0].max_inflight + BROKER_INFLIGHT
    counters = publisher.counters()
    assert (counters["reconnects"], counters["dropped"], counters["rejected"]) == (1, 0, 0)
    assert recorder.texts("streamproc/long/faces")[-1] == "2"


def test_full_queue_drops_the_oldest_and_says_so(
    broker_factory: BrokerFactory, recorders: RecorderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    broker = broker_factory(persistent=True)
    recorder = recorders(broker.port, ("streamproc/events",), persistent=True)
    options = MqttSinkSettings(type="mqtt", queue_size=10, reconnect_min_delay=0.2, reconnect_max_delay=0.5)
    publisher = Publisher(MqttSettings(host="127.0.0.1", port=broker.port), options, Topics("streamproc"))
    publisher.start()
    try:
        broker.stop()
        wait_until(lambda: not publisher.counters()["connected"], 5, "the publisher to notice the outage")
        with caplog.at_level(logging.WARNING, logger="streamproc.mqtt"):
            for number in range(50):
                publisher.publish(Message("streamproc/events", str(number).encode(), 1, retain=False))
        assert publisher.counters()["dropped"] == 40
        assert "dropped the 1 oldest" in caplog.text
        broker.start()
        wait_until(lambda: len(recorder.on("streamproc/events")) >= 10, 10, "the queued messages")
        assert recorder.texts("streamproc/events") == [str(number) for number in range(40, 50)]
    finally:
        undelivered = publisher.close(deadline=time.monotonic() + 10)
    assert undelivered == 0


def test_sigkill_leaves_the_retained_offline(
    tmp_path: Path, broker: Broker, recorders: RecorderFactory, long_video: Path
) -> None:
    recorder = recorders(broker.port, ("streamproc/available",))
    config = write_yaml(
        tmp_path / "run.yaml", f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\nsinks:\n  - {{type: mqtt}}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "run", str(long_video), "-c", str(config), "--no-progress"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: recorder.texts("streamproc/available") == ["online"], 30, "online")
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    wait_until(lambda: recorder.texts("streamproc/available") == ["online", "offline"], 10, "the last will")
    late = recorders(broker.port, ("streamproc/available",))
    wait_until(lambda: late.on("streamproc/available"), 5, "the retained state")
    assert [(m.payload, m.retain) for m in late.on("streamproc/available")] == [(b"offline", True)]


def test_an_unreachable_broker_ends_the_run_within_the_shutdown_grace(
    tmp_path: Path, broker: Broker, recorders: RecorderFactory, long_video: Path
) -> None:
    """One bound for every output: with the broker gone and messages queued, SIGTERM ends the run
    within shutdown_grace (not the 10 s MQTT used to wait on its own), saying how many were lost."""
    grace = 2
    recorder = recorders(broker.port, ("streamproc/available",))
    config = write_yaml(
        tmp_path / "run.yaml",
        f"sources:\n  - {{url: {long_video}, realtime: true, loop: true}}\nshutdown_grace: {grace}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
        "sinks:\n  - {type: mqtt, stats_interval: 0.2, reconnect_min_delay: 0.2, reconnect_max_delay: 0.5}\n",
    )
    command = [sys.executable, "-m", "streamproc", "run", "-c", str(config), "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: recorder.texts("streamproc/available") == ["online"], 30, "online")
        broker.stop()
        time.sleep(1.0)  # five stats messages (and face counts) queue up with nobody to take them
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    print(f"broker gone, SIGTERM: the run ended {took:.2f} s later (shutdown_grace {grace} s)")
    assert grace - 0.5 <= took < grace + 2, f"{took:.2f} s: the grace was not what bounded the stop\n{stderr}"
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "trying for 2 s more (shutdown_grace)" in stderr, stderr
    lost = re.search(
        rf"gave up after the {grace} s shutdown grace: (\d+) MQTT messages not delivered", stderr
    )
    assert lost is not None and int(lost.group(1)) >= 5, stderr


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_username_and_password(
    tmp_path: Path,
    broker_factory: BrokerFactory,
    recorders: RecorderFactory,
    sample_video: Path,
    run_cli: CliRunner,
    protocol: str,
) -> None:
    broker = broker_factory(users={"cam": "right horse", "watcher": "battery"})
    recorder = recorders(broker.port, ("streamproc/#",), auth=("watcher", "battery"))
    config = write_yaml(
        tmp_path / "run.yaml",
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: cam, protocol: '{protocol}'}}\n"
        "sinks:\n  - {type: mqtt}\n",
    )
    result = run_cli(
        "run", sample_video, "-c", config, "--no-progress", env={"STREAMPROC_MQTT__PASSWORD": "right horse"}
    )
    assert result.returncode == 0, result.stderr
    wait_until(lambda: recorder.texts("streamproc/sample/faces"), 5, "the face count")

    result = run_cli(
        "run", sample_video, "-c", config, "--no-progress", env={"STREAMPROC_MQTT__PASSWORD": "nope"}
    )
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"streamproc: error: MQTT broker mqtt://127.0.0.1:{broker.port} refused")
    assert "check mqtt.username and the password (STREAMPROC_MQTT__PASSWORD)" in error
    assert "Traceback" not in result.stderr


def test_tls_with_a_test_ca(
    tmp_path: Path,
    pki: Pki,
    broker_factory: BrokerFactory,
    recorders: RecorderFactory,
    sample_video: Path,
    run_cli: CliRunner,
) -> None:
    broker = broker_factory(pki=pki)
    recorder = recorders(broker.port, ("streamproc/#",))  # the plain listener of the same broker

    def config(ca: Path) -> Path:
        return write_yaml(
            tmp_path / "tls.yaml",
            f"mqtt:\n  host: localhost\n  port: {broker.tls_port}\n  tls:\n    enabled: true\n"
            f"    ca_file: {ca}\n    cert_file: {pki.client_cert}\n    key_file: {pki.client_key}\n"
            "sinks:\n  - {type: mqtt}\n",
        )

    result = run_cli("run", sample_video, "-c", config(pki.ca), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"connected to mqtts://localhost:{broker.tls_port}" in result.stderr
    wait_until(lambda: recorder.texts("streamproc/sample/faces"), 5, "messages sent over TLS")

    result = run_cli("run", sample_video, "-c", config(pki.other_ca), "--no-progress")
    assert result.returncode == 1
    assert "does not verify" in result.stderr and "check mqtt.tls.ca_file" in result.stderr


def start_events_cli(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamproc", "events", *args],
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return process, out, err


def test_events_command_prints_events_from_a_running_pipeline(
    tmp_path: Path, broker: Broker, enter_exit_video: Path
) -> None:
    address = f"127.0.0.1:{broker.port}"
    readable, readable_out, readable_err = start_events_cli(
        tmp_path, "readable", "--broker", address, "--type", "new", "--count", "2"
    )
    raw, raw_out, raw_err = start_events_cli(
        tmp_path, "raw", "--broker", address, "--source", "enter", "--json"
    )
    try:
        for err in (readable_err, raw_err):
            wait_until(
                lambda err=err: "subscribed to streamproc/events" in err.read_text(), 20, "subscription"
            )
        pipeline, sink = pipeline_with_events(mqtt_settings(enter_exit_video, broker.port))
        assert pipeline.run().ok

        assert readable.wait(10) == 0, "--count 2 exits after two events"
        lines = readable_out.read_text().splitlines()
        new_events = [event for event in sink.sent if event["type"] == "new"][:2]
        assert len(lines) == 2
        # tracks are numbered per source in the order they appear; the long ids only with --full-ids
        for number, (line, event) in enumerate(zip(lines, new_events, strict=True), start=1):
            assert f"  enter  new     track {number}  " in line and f"  frame={event['frame']}" in line
            assert "event_id=" not in line

        wait_until(lambda: len(raw_out.read_text().splitlines()) >= len(sink.sent), 10, "every event as JSON")
        assert [json.loads(line) for line in raw_out.read_text().splitlines()] == sink.sent
    finally:
        for process in (readable, raw):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)


def publish_raw(port: int, payloads: list[bytes]) -> None:
    """Publish ``payloads`` on streamproc/events as any client of the broker could (QoS 1, in order)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="hostile-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish("streamproc/events", payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_events_command_prints_only_sanitised_text_and_skips_malformed_messages(
    tmp_path: Path, broker: Broker
) -> None:
    now = time.time()
    good = {"type": "new", "source": "door", "track_id": "20261207T214000Z-f1773209c-7", "wall_time": now}
    hostile = {
        **good,
        "source": "cam\x1b]0;owned\x07\x1b[2J\nfake line\u202e",
        "track_id": "t\x1b[31m-2",
        "note\x1b[1m": "a" * 5000,
    }
    malformed = [
        json.dumps({**good, "wall_time": "x"}).encode(),
        json.dumps({**good, "wall_time": 1e300}).encode(),
        b'{"type": "new", "source": "door", "wall_time": NaN}',
        b"\xff\xfe not json",
        b"[1, 2]",
        json.dumps({**good, "source": None}).encode(),
        json.dumps({**good, "track_id": [1]}).encode(),
    ]
    address = f"127.0.0.1:{broker.port}"
    events, out, err = start_events_cli(tmp_path, "hostile", "--broker", address, "--count", "3")
    try:
        wait_until(lambda: "subscribed to streamproc/events" in err.read_text(), 20, "subscription")
        publish_raw(broker.port, [*malformed, json.dumps(hostile).encode(), *[json.dumps(good).encode()] * 2])
        assert events.wait(10) == 0, err.read_text()
    finally:
        if events.poll() is None:
            os.killpg(events.pid, signal.SIGTERM)
            events.wait(10)
    printed = out.read_bytes()
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", printed), "no control character reaches the terminal"
    lines = printed.decode().splitlines()
    assert len(lines) == 3, lines  # one line per event: the newline in `source` is shown escaped
    assert lines[0].split("  ")[1] == "cam\\x1b]0;owned\\x07\\x1b[2J\\nfake line\\u202e"
    assert "  track 1  " in lines[0] and "note\\x1b[1m=aaa" in lines[0] and len(lines[0]) < 400
    # the same track twice: one number; another source counts from 1 on its own
    assert all(line.endswith("  door  new     track 1") for line in lines[1:]), lines
    log_lines = err.read_text()
    assert "'wall_time' 'x' is not a time" in log_lines and "'wall_time' 1e+300 is not a time" in log_lines
    assert "not JSON" in log_lines and "a JSON list, not an object" in log_lines
    assert "no text 'source'" in log_lines and "'track_id' is neither text nor a number" in log_lines
    assert "skipped 7 malformed message(s)" in log_lines and "Traceback" not in log_lines


def test_snapshots_detections_discovery_and_stats(
    broker: Broker, recorders: RecorderFactory, sample_video: Path
) -> None:
    recorder = recorders(broker.port, ("streamproc/#", "homeassistant/#"))
    settings = mqtt_settings(
        sample_video,
        broker.port,
        snapshot=True,
        snapshot_interval=0,
        detections=True,
        detections_interval=0,
        home_assistant={"enabled": True},
    )
    pipeline, _sink = pipeline_with_events(settings)
    assert pipeline.run().ok
    wait_until(lambda: recorder.texts("streamproc/available")[-1:] == ["offline"], 10, "the end of the run")

    detections = json_payloads(recorder, "streamproc/sample/detections")
    assert [record["frame"] for record in detections] == list(range(100)), "interval 0: every frame"
    snapshots = recorder.on("streamproc/sample/snapshot")
    # one per frame with faces, less any replaced by a newer one while queued (latest value wins)
    assert 1 <= len(snapshots) <= sum(1 for record in detections if record["faces"])
    late = recorders(broker.port, ("streamproc/sample/snapshot",))
    retained = wait_until(lambda: late.on("streamproc/sample/snapshot"), 5, "the retained snapshot")
    assert [(m.payload, m.retain) for m in retained] == [(snapshots[-1].payload, True)]
    picture = cv2.imdecode(np.frombuffer(retained[0].payload, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and 60 <= picture.shape[0] <= 360 and 60 <= picture.shape[1] <= 640

    configs = {
        m.topic: json.loads(m.payload) for m in recorder.received if m.topic.startswith("homeassistant/")
    }
    assert set(configs) == {
        "homeassistant/binary_sensor/streamproc/sample_face/config",
        "homeassistant/sensor/streamproc/sample_faces/config",
    }
    assert all(config["state_topic"] == "streamproc/sample/faces" for config in configs.values())
    stats = json_payloads(recorder, "streamproc/stats")[-1]
    assert stats["sources"]["sample"]["frames_processed"] == 100
    assert stats["inference_ms"]["blazeface-short"]["count"] == 100
