"""`streamproc config check` and `config schema`: every class of bad config named by its key."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import CliRunner

from streamproc.cli.config_command import config_schema, schema_fields, schema_markdown

VALID = "sources:\n  - url: samples/sample.mp4\n    id: cam1\n"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param("detector:\n  min_scor: 0.5\n", "detector.min_scor", id="unknown key"),
        pytest.param("http:\n  port: eighty\n", "http.port", id="wrong type"),
        pytest.param("http:\n  port: 70000\n", "http.port", id="out of range"),
        pytest.param("detector:\n  model: medium\n", "detector.model", id="not one of the choices"),
        pytest.param("sources:\n  - id: cam1\n", "sources.0.url", id="missing required"),
        pytest.param("sinks:\n  - type: telegram\n    path: a\n", "sinks.0", id="unknown sink type"),
        pytest.param("sinks:\n  - type: jsonl\n", "sinks.0.path", id="sink without path"),
        pytest.param("sources: cam.mp4\n", "sources", id="list expected"),
        pytest.param(VALID + "  - url: b.mp4\n    id: cam1\n", "sources.1.id", id="duplicate source id"),
    ],
)
def test_config_check_names_the_key(tmp_path: Path, run_cli: CliRunner, text: str, key: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run_cli("config", "check", config)
    assert result.returncode == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"'{key}'" in errors[0] and str(config) in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("detector: [1\n", "not valid YAML at line"), ("- a\n- b\n", "must hold a mapping")],
)
def test_config_check_unreadable_files(tmp_path: Path, run_cli: CliRunner, text: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = run_cli("config", "check", config)
    assert result.returncode == 2 and expected in result.stderr and str(config) in result.stderr


def test_config_check_prints_effective_config_with_secrets_masked(tmp_path: Path, run_cli: CliRunner) -> None:
    config = tmp_path / "cam.yaml"
    config.write_text(
        "sources:\n  - url: rtsp://admin:hunter2@10.0.0.5/stream1\n    id: door\n"
        '  - url: "http://admin:Pa/ss#7?x@10.0.0.6/cam"\n    id: side\n'
    )
    result = run_cli("config", "check", config, env={"STREAMPROC_HTTP__PORT": "9100"})
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "Pa/ss" not in result.stdout and "admin" not in result.stdout
    effective = yaml.safe_load(result.stdout)
    assert effective["sources"][0]["url"] == "rtsp://***@10.0.0.5/stream1"
    assert effective["sources"][1]["url"] == "http://***@10.0.0.6/cam"
    assert effective["http"]["port"] == 9100, "the environment is part of the effective config"
    assert effective["detector"]["model"] == "short", "defaults are shown"


def test_secret_keys_are_masked_wherever_they_are() -> None:
    from streamproc.cli.config_command import masked

    data = {"mqtt": {"password": "p4ss", "username": "u"}, "api_token": "t0k", "note": "password-less"}
    assert masked(data) == {
        "mqtt": {"password": "********", "username": "u"},
        "api_token": "********",
        "note": "password-less",
    }


def test_schema_validates_the_example_and_rejects_typos(repo_dir: Path, run_cli: CliRunner) -> None:
    result = run_cli("config", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    example = yaml.safe_load((repo_dir / "config" / "example.yaml").read_text())
    jsonschema.validate(example, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "detektor": {}}, schema)


def test_every_field_is_documented(repo_dir: Path) -> None:
    rows = schema_fields(config_schema())
    undocumented = [key for key, _type, _default, description in rows if not description]
    assert not undocumented, f"give these settings a Field(description=...): {undocumented}"
    reference = (repo_dir / "docs" / "config.md").read_text()
    assert reference == schema_markdown(config_schema()), (
        "docs/config.md is stale: run `streamproc config schema --format markdown > docs/config.md`"
    )
    example = (repo_dir / "config" / "example.yaml").read_text()
    for key, *_ in rows:
        leaf = key.rsplit(".", 1)[-1].removesuffix("[]")
        assert f"{leaf}:" in example, f"config/example.yaml does not mention {key}"
