"""A recording replayed as a camera: ``realtime`` paces frames at the file's rate, ``loop`` replays it."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from conftest import count_frames, read_records

from streamproc.capture.buffer import BufferPolicy
from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings
from streamproc.core.errors import ConfigError
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import Pipeline

pytestmark = pytest.mark.slow  # recordings replayed in real time

SAMPLE_FPS = 25


def _run(source: SourceSettings, events: Path, duration: float | None) -> tuple[Pipeline, float]:
    settings = Settings(
        sources=[source], sinks=[JsonlSinkSettings(type="jsonl", path=events)], duration=duration
    )
    pipeline = build_pipeline(settings)
    started = time.monotonic()
    report = pipeline.run()
    assert report.ok, report.problems()
    return pipeline, time.monotonic() - started


def test_realtime_loop_delivers_at_the_file_rate_with_rising_timestamps(
    sample_video: Path, tmp_path: Path
) -> None:
    events = tmp_path / "e.jsonl"
    source = SourceSettings(url=str(sample_video), realtime=True, loop=True)
    pipeline, seconds = _run(source, events, duration=5.0)  # the sample lasts 4 s: one replay

    assert pipeline.buffer(pipeline.streams[0].source_id).policy is BufferPolicy.DROP_OLDEST
    records = read_records(events)
    frames = [record["frame"] for record in records]
    assert frames == list(range(len(frames))), "no frame dropped at 25 fps"
    assert len(frames) == pytest.approx(SAMPLE_FPS * seconds, abs=4), "paced at the file's own rate"
    assert len(frames) > count_frames(sample_video)[0], "the file was played again"
    pts = [record["pts"] for record in records]
    assert all(b > a for a, b in itertools.pairwise(pts)), "timestamps keep rising over the loop"
    wall = [record["wall_time"] for record in records]
    assert wall[-1] - wall[0] == pytest.approx(pts[-1] - pts[0], abs=0.2), "delivered on the media clock"


def test_loop_without_realtime_runs_flat_out_until_the_duration(sample_video: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    _run(SourceSettings(url=str(sample_video), loop=True), events, duration=2.0)
    frames = [record["frame"] for record in read_records(events)]
    assert len(frames) > 2 * count_frames(sample_video)[0], "faster than real time, replayed"
    assert frames == list(range(len(frames))), "lossless like any file"


def test_realtime_and_loop_are_for_files_only(tmp_path: Path) -> None:
    settings = Settings(sources=[SourceSettings(url="rtsp://127.0.0.1:1/cam", realtime=True)])
    with pytest.raises(ConfigError, match="video files"):
        build_pipeline(settings)
