"""MQTT pieces that need no broker: the bounded outbox, topic names, discovery configs, settings."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRunner

from streamproc.cli.event_text import MAX_REMEMBERED, TrackNumbers, readable
from streamproc.config.settings import (
    HomeAssistantSettings,
    MqttQosSettings,
    MqttSettings,
    MqttSinkSettings,
    MqttTlsSettings,
    load_settings,
)
from streamproc.mqtt.discovery import discovery_configs
from streamproc.mqtt.outbox import Message, Outbox
from streamproc.mqtt.topics import Topics


def event(text: str) -> Message:
    return Message("streamproc/events", text.encode(), qos=1, retain=False)


def face_count(count: int) -> Message:
    return Message("streamproc/cam/faces", str(count).encode(), qos=1, retain=True, latest_value=True)


def drain(outbox: Outbox) -> list[str]:
    taken = []
    while (message := outbox.pop()) is not None:
        taken.append(message.payload.decode())
    return taken


def test_full_outbox_drops_the_oldest_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(capacity=3)
    with caplog.at_level(logging.WARNING, logger="streamproc.mqtt.outbox"):
        for number in range(5):
            outbox.put(event(str(number)))
    assert drain(outbox) == ["2", "3", "4"], "the newest stay, in order"
    assert (outbox.dropped, outbox.high_water) == (2, 3)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1, "an overflowing queue warns once per interval, not once per message"
    assert "MQTT queue full (3 messages): dropped the 1 oldest (1 in all)" in warnings[0]


def test_latest_values_replace_their_queued_predecessor_and_events_keep_order() -> None:
    outbox = Outbox(capacity=10)
    for message in (face_count(1), event("a"), face_count(2), event("b"), face_count(0)):
        outbox.put(message)
    assert drain(outbox) == ["a", "b", "0"]
    assert outbox.coalesced == 2 and outbox.dropped == 0
    outbox.put(face_count(3))  # the topic is free again once its queued value was taken
    assert drain(outbox) == ["3"] and outbox.coalesced == 2


def test_topic_layout_keeps_each_source_in_one_level() -> None:
    topics = Topics("home/cams")
    assert (topics.available, topics.events, topics.stats) == (
        "home/cams/available",
        "home/cams/events",
        "home/cams/stats",
    )
    assert topics.source("front door/2#", "faces") == "home/cams/front_door_2_/faces"


def test_home_assistant_discovery_wires_state_and_availability() -> None:
    configs = discovery_configs(Topics("streamproc"), "front door", HomeAssistantSettings(enabled=True))
    binary = configs["homeassistant/binary_sensor/streamproc/front_door_face/config"]
    sensor = configs["homeassistant/sensor/streamproc/front_door_faces/config"]
    for config in (binary, sensor):
        assert config["state_topic"] == "streamproc/front_door/faces"
        process, camera = config["availability"]
        assert config["availability_mode"] == "all"
        assert process["topic"] == "streamproc/available"
        assert (process["payload_available"], process["payload_not_available"]) == ("online", "offline")
        assert camera["topic"] == "streamproc/front_door/status"  # a camera away behind its relay
        assert camera["value_template"] == "{{ 'online' if value_json.state == 'streaming' else 'offline' }}"
        assert config["device"]["identifiers"] == ["streamproc_front_door"]
    assert binary["unique_id"] != sensor["unique_id"]
    assert binary["value_template"] == "{{ 'ON' if value | int > 0 else 'OFF' }}"
    assert sensor["unit_of_measurement"] == "faces"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mqtt.yaml"
    path.write_text(text)
    return path


def test_password_comes_from_the_environment_and_stays_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, "mqtt:\n  username: cam\n  protocol: 5\n")
    monkeypatch.setenv("STREAMPROC_MQTT__PASSWORD", "s3cret")
    settings = load_settings(config)
    assert settings.mqtt.protocol == "5", "YAML's number 5 is accepted"
    assert settings.mqtt.password is not None and settings.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_cli_stops_at_start_up_on_bad_mqtt_settings(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    bad_port = write_config(tmp_path, "mqtt:\n  port: 0\nsinks:\n  - type: mqtt\n")
    result = run_cli("run", sample_video, "-c", bad_port, "--no-progress")
    assert result.returncode == 2
    assert "invalid setting 'mqtt.port'" in result.stderr and "Traceback" not in result.stderr

    not_a_certificate = tmp_path / "ca.pem"
    not_a_certificate.write_text("this is not a certificate\n")
    bad_ca = write_config(
        tmp_path, f"mqtt:\n  tls: {{enabled: true, ca_file: {not_a_certificate}}}\nsinks:\n  - type: mqtt\n"
    )
    result = run_cli("run", sample_video, "-c", bad_ca, "--no-progress")
    assert result.returncode == 2
    assert "invalid setting 'mqtt.tls.ca_file'" in result.stderr and "Traceback" not in result.stderr


def test_example_config_documents_every_mqtt_field(repo_dir: Path, tmp_path: Path) -> None:
    example = (repo_dir / "config" / "example.yaml").read_text()
    # the mqtt sink entry is commented out (it needs a broker); uncommented, it must be valid
    # (only its own block: other commented-out sinks, e.g. images, stay comments)
    block = re.search(r"(?m)^  # - type: mqtt\n(?:  #   .*\n)*", example)
    assert block is not None, "the example shows a commented-out mqtt sink"
    enabled = example.replace(block.group(0), re.sub(r"(?m)^  # ", "  ", block.group(0)))
    settings = load_settings(write_config(tmp_path, enabled))
    sink = next(sink for sink in settings.sinks if sink.type == "mqtt")
    assert sink == MqttSinkSettings(type="mqtt"), "the example shows the defaults"
    assert settings.mqtt == MqttSettings(), "the example shows the defaults"
    for model in (MqttSettings, MqttTlsSettings, MqttSinkSettings, MqttQosSettings, HomeAssistantSettings):
        for name in model.model_fields:
            assert re.search(rf"(?m)^\s*(# )?\s*(- )?{name}:", enabled), (
                f"{model.__name__}.{name} undocumented"
            )


def test_close_timeout_says_where_it_went(tmp_path: Path, run_cli: CliRunner) -> None:
    """The MQTT sink's own close_timeout gave way to the run's shutdown_grace: a config that still
    sets it gets one line naming the replacement, not 'extra inputs are not permitted'."""
    config = write_config(tmp_path, "sinks:\n  - type: mqtt\n    close_timeout: 5\n")
    result = run_cli("config", "check", config)
    assert result.returncode == 2
    assert "close_timeout was replaced by the top-level shutdown_grace" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_track_numbers_count_per_source_and_full_ids_on_request() -> None:
    def track_event(kind: str, source: str, track: str) -> dict[str, Any]:
        return {"type": kind, "source": source, "track_id": track, "event_id": f"{track}.1", "wall_time": 0.0}

    numbers = TrackNumbers()
    shown = [
        re.findall(r"  track (\S+)", readable(track_event(kind, source, track), numbers))
        for kind, source, track in [
            ("new", "a", "run-1"),
            ("new", "b", "run-2"),
            ("new", "a", "run-3"),
            ("update", "a", "run-1"),
            ("end", "a", "run-1"),
            ("new", "a", "run-4"),  # an ended track's number is not given again
        ]
    ]
    assert shown == [["1"], ["1"], ["2"], ["1"], ["1"], ["3"]]
    full = readable(track_event("new", "a", "run-1"))
    assert "  track run-1  " in full and full.endswith("event_id=run-1.1")


def test_a_subscriber_fed_made_up_ids_stays_small() -> None:
    numbers = TrackNumbers()
    for n in range(3 * MAX_REMEMBERED):
        numbers.number(f"source-{n}", f"track-{n}")
        numbers.number("steady", f"track-{n}")
    assert numbers.number("steady", "another") == 3 * MAX_REMEMBERED + 1, "a source in use keeps counting"
    assert len(numbers._open) <= MAX_REMEMBERED and len(numbers._counts) <= MAX_REMEMBERED
    event = {"type": "new", "source": "s", "wall_time": 0, **{f"k{i}": i for i in range(1000)}}
    line = readable(event)
    assert line.endswith("k39=39  (+960 more fields)")
