"""Outputs never destroy inputs or good files, and survive a hard stop (issue 13, cases 1, 3, 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from conftest import REPO, CliRunner, count_frames, read_records

from streamproc.config.settings import JsonlSinkSettings, SourceSettings, VideoSinkSettings
from streamproc.core.atomic_files import discard_if_empty, partial_path
from streamproc.pipeline.output_checks import OutputConflictError, check_outputs, input_files


def test_output_over_the_input_is_refused_before_anything_is_written(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    recording = tmp_path / "cam1.mp4"
    recording.write_bytes(sample_video.read_bytes())
    before = recording.read_bytes()
    for output in (["--out-video", str(recording)], ["--out-video", str(tmp_path / "{source}.mp4")]):
        result = run_cli("run", recording, *output, "--no-progress")
        assert result.returncode == 2, result.stderr
        assert "the input of source cam1" in result.stderr and "Traceback" not in result.stderr
    assert recording.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cam1.mp4"], "nothing opened"


@pytest.mark.parametrize(
    ("sinks", "expected"),
    [
        ([JsonlSinkSettings(type="jsonl", path=Path("REC"))], "the input of source rec"),
        (
            [
                JsonlSinkSettings(type="jsonl", path=Path("out/x")),
                VideoSinkSettings(type="video", path=Path("out/../out/x")),
            ],
            "both write",
        ),
        ([VideoSinkSettings(type="video", path=Path("out/all.mp4"))], "cannot hold several sources"),
    ],
)
def test_conflicting_outputs_are_refused(
    tmp_path: Path, sample_video: Path, sinks: list, expected: str
) -> None:
    recording = tmp_path / "rec.mp4"
    recording.symlink_to(sample_video)  # a link to the input is the input too
    resolved = [
        sink.model_copy(update={"path": tmp_path / str(sink.path).replace("REC", "rec.mp4")})
        for sink in sinks
    ]
    sources = [SourceSettings(url=str(recording))]
    if "several" in expected:
        sources.append(SourceSettings(url=str(sample_video), id="two"))
    with pytest.raises(OutputConflictError, match=expected) as error:
        check_outputs(resolved, input_files(sources, ["rec", "two"][: len(sources)]))
    assert error.value.exit_code == 2


def test_existing_outputs_follow_the_overwrite_choice(tmp_path: Path, sample_video: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"type":"frame"}\n')
    inputs = input_files([SourceSettings(url=str(sample_video))], ["sample"])
    check_outputs([JsonlSinkSettings(type="jsonl", path=events)], inputs)  # append: fine
    with pytest.raises(OutputConflictError, match="--overwrite refuse"):
        check_outputs([JsonlSinkSettings(type="jsonl", path=events, existing="refuse")], inputs)
    other = tmp_path / "other.mp4"  # someone's video, not an input of this run
    other.write_bytes(sample_video.read_bytes())
    with pytest.raises(OutputConflictError, match="not a JSON Lines file"):
        check_outputs([JsonlSinkSettings(type="jsonl", path=other)], inputs)
    video = tmp_path / "a.mp4"
    partial_path(video).write_bytes(b"what a killed run left")
    with pytest.raises(OutputConflictError, match="earlier run that did not finish"):
        check_outputs([VideoSinkSettings(type="video", path=video)], inputs)


def _kill_mid_run(tmp_path: Path, video: Path, seconds: float) -> tuple[Path, Path, str]:
    """Run streamproc on ``video`` replayed in real time; SIGKILL it after ``seconds`` of frames."""
    events, annotated = tmp_path / "e.jsonl", tmp_path / "a.mp4"
    config = tmp_path / "run.yaml"
    config.write_text(f"sources:\n  - url: {video}\n    realtime: true\n")
    command = [sys.executable, "-m", "streamproc", "run", "-c", config, "--events", events]
    command += ["--out-video", annotated, "--no-progress", "--threads", "1"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_lines(events)) < seconds * 25:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return events, annotated, stderr


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


@pytest.mark.slow  # kills whole runs mid-write
def test_sigkill_leaves_a_playable_video_and_whole_json_lines(
    tmp_path: Path, long_video: Path, run_cli: CliRunner
) -> None:
    events, annotated, stderr = _kill_mid_run(tmp_path, long_video, seconds=4)
    assert not annotated.exists(), "the target appears only when the video is complete"
    lines = _lines(events)
    assert all(line.endswith(b"\n") for line in lines)
    reported = [record["frame"] for record in read_records(events)]
    decoded, _ = count_frames(partial_path(annotated))
    lost = len(reported) - decoded
    print(f"SIGKILL after {len(reported)} frames in the JSONL: {decoded} frames decoded from the MP4")
    assert 0 <= lost <= 2 * 25, f"{lost} frames lost of {len(reported)}: more than 2 s ({stderr[-500:]})"
    with av.open(str(partial_path(annotated))) as container:  # it starts with the input's first frame
        first = next(container.decode(video=0))
        assert float(first.pts * first.time_base) < 0.2, "(fragments start late by B-frames' delay only)"

    # a later run appends to the events file after a torn line, and refuses to overwrite the partial video
    with open(events, "ab") as stream:
        stream.write(b'{"type":"frame","sou')
    result = run_cli("run", long_video, "--events", events, "--out-video", annotated, "--no-progress")
    assert result.returncode == 2 and "earlier run that did not finish" in result.stderr
    os.rename(partial_path(annotated), tmp_path / "saved.mp4")
    short = tmp_path / "short.mp4"
    short.symlink_to(REPO / "samples" / "sample.mp4")
    result = run_cli("run", short, "--events", events, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "ended in an incomplete line" in result.stderr
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert sum(record.get("source") == "short" for record in records if record["type"] == "frame") == 100


def test_an_empty_output_left_unused_is_removed_but_never_a_pipe_or_device(tmp_path: Path) -> None:
    fifo, empty = tmp_path / "events.fifo", tmp_path / "e.jsonl"
    os.mkfifo(fifo)
    empty.touch()
    for path in (fifo, empty):  # a FIFO stands for devices too (no /dev/null here: root could remove it)
        discard_if_empty(path)
    assert fifo.exists() and not empty.exists()
