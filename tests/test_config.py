"""Settings: file < environment < command line, and start-up errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamproc.config.settings import load_settings
from streamproc.core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "streamproc.yaml"
    path.write_text(text)
    return path


def test_precedence_file_then_env_then_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "detector:\n  model: full\n  min_score: 0.6\n  threads: 2\n")
    settings = load_settings(config)
    assert (settings.detector.model, settings.detector.min_score, settings.detector.threads) == (
        "full",
        0.6,
        2,
    )

    monkeypatch.setenv("STREAMPROC_DETECTOR__MIN_SCORE", "0.7")
    settings = load_settings(config)
    assert settings.detector.min_score == 0.7
    assert settings.detector.model == "full"  # untouched keys still come from the file

    settings = load_settings(config, {"detector": {"min_score": 0.8}})
    assert settings.detector.min_score == 0.8
    assert settings.detector.threads == 2


def test_an_empty_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "models_dir: /srv/models\ndetector:\n  min_score: 0.6\n")
    monkeypatch.setenv("STREAMPROC_MODELS_DIR", "")  # was the current directory
    monkeypatch.setenv("STREAMPROC_DETECTOR__MIN_SCORE", "")  # was an error
    settings = load_settings(config)
    assert settings.models_dir == Path("/srv/models")
    assert settings.detector.min_score == 0.6


def test_example_config_is_valid(repo_dir: Path) -> None:
    settings = load_settings(repo_dir / "config" / "example.yaml")
    assert settings.sinks, "the example documents the sinks"
    assert {sink.type for sink in settings.sinks} == {"jsonl", "video"}


def test_cameras_example_is_valid_and_overrides_key_by_key(repo_dir: Path) -> None:
    settings = load_settings(repo_dir / "config" / "cameras.yaml")
    door, yard, desk = settings.sources
    assert (door.id, yard.id, desk.id) == ("front-door", "yard", "desk")
    assert settings.live_for(door) == settings.live
    yard_live = settings.live_for(yard)
    assert (yard_live.transport, yard_live.stall_timeout, yard_live.reconnect.max) == ("udp", 20, 10)
    assert yard_live.reconnect.initial == settings.live.reconnect.initial  # not overridden: inherited
    assert yard_live.read_timeout == settings.live.read_timeout
    assert (desk.camera.width, desk.camera.height, desk.camera.fps) == (1280, 720, 30)


def test_environment_changes_the_global_live_settings_sources_keep_their_overrides(
    repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMPROC_LIVE__RECONNECT__MAX", "5")
    monkeypatch.setenv("STREAMPROC_LIVE__TRANSPORT", "udp")
    settings = load_settings(repo_dir / "config" / "cameras.yaml")
    door, yard, _ = settings.sources
    assert settings.live_for(door).reconnect.max == 5 and settings.live_for(door).transport == "udp"
    assert settings.live_for(yard).reconnect.max == 10  # the camera's own value wins
    assert settings.live.connect_timeout == 5  # the rest still comes from the file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detector:\n  min_scor: 0.5\n", "'detector.min_scor'"),
        ("detektor: {}\n", "'detektor'"),
        ("detector:\n  threads: many\n", "'detector.threads'"),
        ("detector:\n  min_score: 1.5\n", "'detector.min_score'"),
        ("sinks:\n  - type: video\n    path: a.mp4\n    crf: 99\n", "'sinks.0.crf'"),
        ("sinks:\n  - type: telegram\n    path: a\n", "'sinks.0'"),
        ("sources:\n  - {url: a.mp4, buffer_size: 0}\n", "'sources.0.buffer_size'"),
        ("live:\n  transport: sctp\n", "'live.transport'"),
        ("sources:\n  - {url: rtsp://a/b, live: {read_timout: 1}}\n", "'sources.0.live.read_timout'"),
        (
            "sources:\n  - {url: rtsp://a/b, live: {reconnect: {factor: 0.5}}}\n",
            "'sources.0.live.reconnect.factor'",
        ),
        ("sources:\n  - {url: /dev/video0, camera: {fps: 0}}\n", "'sources.0.camera.fps'"),
        ("duration: -1\n", "'duration'"),
        ("mqtt:\n  port: 70000\n", "'mqtt.port'"),
        ("mqtt:\n  port: mqtt\n", "'mqtt.port'"),
        ("mqtt:\n  protocol: 4\n", "'mqtt.protocol'"),
        ("mqtt:\n  topic_prefix: cams/#\n", "'mqtt.topic_prefix'"),
        ("mqtt:\n  password: secret\n", "'mqtt'"),
        ("mqtt:\n  tls: {enabled: true, ca_file: /nonexistent/ca.pem}\n", "'mqtt.tls.ca_file'"),
        ("sinks:\n  - type: mqtt\n    qos: {events: 3}\n", "'sinks.0.qos.events'"),
        ("sinks:\n  - type: mqtt\n    queue_size: 0\n", "'sinks.0.queue_size'"),
    ],
)
def test_bad_values_name_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert expected in message
    assert str(config) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        (
            "sink:\n  - type: jsonl\n    path: a.jsonl\n",
            "'sink' in {config}: unknown setting (did you mean 'sinks'?",
        ),
        (
            "detector:\n  min_scor: 0.5\n",
            "'detector.min_scor' in {config}: unknown setting (did you mean 'min_score'?",
        ),
        ("sinks:\n  - {type: video, path: a.mp4, draw_keypionts: true}\n", "did you mean 'draw_keypoints'?"),
        ("sources:\n  - {url: rtsp://a/b, live: {read_timout: 1}}\n", "did you mean 'read_timeout'?"),
        (
            "mqtt:\n  tls: {ca_fil: ca.pem}\n",
            "'mqtt.tls.ca_fil' in {config}: unknown setting (did you mean 'ca_file'?",
        ),
        ("zebra: 1\n", "'zebra' in {config}: unknown setting (check the spelling;"),
    ],
)
def test_a_misspelt_key_gets_the_closest_one(tmp_path: Path, text: str, meant: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert meant.format(config=config) in str(caught.value)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMPROC_DETECTOR__THREADS", "lots")
    with pytest.raises(ConfigError, match="STREAMPROC_DETECTOR__THREADS"):
        load_settings(None)


def test_a_bad_file_value_is_blamed_on_the_file_though_its_section_has_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the README's MQTT recipe: the password in the environment, a TLS file named in the config
    config = write(tmp_path, f"mqtt:\n  tls: {{enabled: true, ca_file: {tmp_path / 'no-ca.pem'}}}\n")
    monkeypatch.setenv("STREAMPROC_MQTT__PASSWORD", "a-password-from-the-environment")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert f"'mqtt.tls.ca_file' in {config}:" in str(caught.value)
    # a key the file does not name still points at the variables of its section
    monkeypatch.setenv("STREAMPROC_MQTT__PORT", "0")
    with pytest.raises(ConfigError, match=r"'mqtt.port' in environment variable STREAMPROC_MQTT__PORT"):
        load_settings(write(tmp_path, "mqtt:\n  host: broker.lan\n"))


def test_a_bad_sink_value_in_the_file_is_blamed_on_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, "sinks:\n  - type: mqtt\n    qos: {events: 3}\n")
    monkeypatch.setenv("STREAMPROC_SINKS_UNRELATED", "x")  # any variable starting STREAMPROC_SINKS
    with pytest.raises(ConfigError, match=re.escape(f"'sinks.0.qos.events' in {config}:")):
        load_settings(config)


def test_bad_cli_value_says_command_line() -> None:
    with pytest.raises(ConfigError, match="command line"):
        load_settings(None, {"detector": {"min_score": -1}})


def test_unparsable_yaml_names_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path, "detector:\n  model: [short\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
