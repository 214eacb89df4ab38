"""Settings: file < environment < command line, and start-up errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.config import load_settings
from streamproc.errors import ConfigError


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


def test_example_config_is_valid(repo_dir: Path) -> None:
    settings = load_settings(repo_dir / "config" / "example.yaml")
    assert settings.sinks, "the example documents the sinks"
    assert {sink.type for sink in settings.sinks} == {"jsonl", "video"}


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


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMPROC_DETECTOR__THREADS", "lots")
    with pytest.raises(ConfigError, match="STREAMPROC_DETECTOR__THREADS"):
        load_settings(None)


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
