"""Logs: human lines by default, JSON for log shippers, -v/-q, one line per source state change."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import CliRunner

from streamproc.cli.logs import levels_for

pytestmark = pytest.mark.slow  # whole runs of the command line

# LiteRT's C++ runtime prints this banner straight to stderr, outside Python's logging
NATIVE_BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def python_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and line != NATIVE_BANNER]


def test_json_logs_one_object_per_line_and_one_per_state_change(
    run_cli: CliRunner, sample_video: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "run", sample_video, "--events", tmp_path / "e.jsonl", "--log-format", "json", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in python_lines(result.stderr)]
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    states = [r["message"] for r in records if r["message"].startswith("source sample:")]
    assert states == ["source sample: streaming", "source sample: stopped (end of file after 100 frames)"]

    failed = run_cli(
        "run", tmp_path / "missing.mp4", "--events", tmp_path / "f.jsonl", "--log-format", "json"
    )
    assert failed.returncode == 1
    errors = [json.loads(line) for line in python_lines(failed.stderr)]
    assert [e["level"] for e in errors] == ["error"]
    assert "missing.mp4" in errors[0]["message"] and "traceback" not in errors[0]


def test_quiet_run_prints_nothing_but_problems(
    run_cli: CliRunner, sample_video: Path, tmp_path: Path
) -> None:
    result = run_cli("run", sample_video, "--events", tmp_path / "e.jsonl", "-q", "--no-progress")
    assert result.returncode == 0
    assert python_lines(result.stderr) == []


def test_debug_shows_the_traceback_of_an_expected_error(run_cli: CliRunner, tmp_path: Path) -> None:
    plain = run_cli("run", tmp_path / "missing.mp4")
    debug = run_cli("run", tmp_path / "missing.mp4", "--debug")
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr
    assert plain.returncode == debug.returncode == 1


def test_verbosity_levels() -> None:
    own, others = zip(*(levels_for(v) for v in (-2, -1, 0, 1, 2)), strict=True)
    assert own == (logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG, logging.DEBUG)
    # other libraries stay at warnings until -vv
    assert others == (logging.ERROR, logging.WARNING, logging.WARNING, logging.WARNING, logging.DEBUG)


def test_config_log_level_applies_without_flags(
    run_cli: CliRunner, sample_video: Path, tmp_path: Path
) -> None:
    config = tmp_path / "quiet.yaml"
    config.write_text("log_level: WARNING\n")
    args = ("run", sample_video, "--events", tmp_path / "e.jsonl", "--no-progress", "-c", config)
    assert python_lines(run_cli(*args).stderr) == []
    assert any("source sample: streaming" in line for line in python_lines(run_cli(*args, "-v").stderr))
