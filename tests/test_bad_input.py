"""Bad input gets a one-line error, a non-zero exit and no traceback; nothing decoded is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CliRunner, count_frames, read_records


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_missing_file(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("run", tmp_path / "nope.mp4")
    assert result.returncode != 0
    assert_one_line_error(result.stderr, "nope.mp4", "does not exist")


def test_no_input_is_one_line_naming_what_to_give(run_cli: CliRunner) -> None:
    result = run_cli("run", env={"STREAMPROC_CONFIG": ""})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "streamproc: error: no input given: name a video file (streamproc run VIDEO.mp4) or list sources"
    ]


def test_zero_byte_file(run_cli: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    result = run_cli("run", empty)
    assert result.returncode != 0
    assert_one_line_error(result.stderr, "empty.mp4", "0 bytes")


def test_text_file_renamed_mp4(run_cli: CliRunner, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("shopping list: milk, eggs\n" * 20)
    result = run_cli("run", fake)
    assert result.returncode != 0
    assert_one_line_error(result.stderr, "notes.mp4", "cannot be read by FFmpeg")


def test_truncated_mp4_processes_what_decodes_then_reports(
    run_cli: CliRunner, tmp_path: Path, sample_video: Path
) -> None:
    data = sample_video.read_bytes()
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(data[: len(data) * 6 // 10])
    events = tmp_path / "events.jsonl"
    result = run_cli("run", truncated, "--events", events, "--no-progress")
    assert result.returncode != 0
    assert_one_line_error(result.stderr, "cut.mp4", "truncated")
    records = read_records(events)
    total = count_frames(sample_video)[0]
    assert 0.3 * total < len(records) < total
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert f"of {total} frames" in result.stderr


@pytest.mark.parametrize("flag", ["--events", "--out-video"])
def test_unwritable_output_path(run_cli: CliRunner, tmp_path: Path, sample_video: Path, flag: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli("run", sample_video, flag, blocker / "out.file", "--no-progress")
    assert result.returncode != 0
    assert_one_line_error(result.stderr, str(blocker))


def test_unknown_model(run_cli: CliRunner, sample_video: Path) -> None:
    result = run_cli("run", sample_video, "--model", "medium")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "--model", "medium", "short", "full")


def test_bad_config_value_names_key(run_cli: CliRunner, tmp_path: Path, sample_video: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("detector:\n  min_score: 3\n")
    result = run_cli("run", sample_video, "--config", config)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "detector.min_score", str(config))


def test_one_bad_input_does_not_stop_the_others(
    run_cli: CliRunner, tmp_path: Path, sample_video: Path
) -> None:
    events = tmp_path / "events.jsonl"
    result = run_cli("run", sample_video, tmp_path / "missing.mp4", "--events", events, "--no-progress")
    assert result.returncode != 0  # the user learns that one input failed
    assert "missing.mp4" in result.stderr
    records = read_records(events)
    assert len(records) == count_frames(sample_video)[0]
