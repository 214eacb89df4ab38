"""Every frame a sink does not write is counted and told (issue 21, item 11): per sink, frames
received = written + not written (by reason), in the end-of-run summary, the JSON Lines file's last
line and /metrics; checked against what the files really hold."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from conftest import CliRunner, count_frames, read_records
from media_gen import constant_rate, write_video
from prometheus_client import generate_latest

from streamproc.config.settings import Settings
from streamproc.pipeline.build import build_pipeline
from streamproc.server.metrics import metrics_registry

pytestmark = pytest.mark.slow  # clips replayed in real time into a slow sink


def _fast_live_clip(tmp_path: Path) -> Path:
    """400 frames at 200 fps, replayed in real time: more than a slow encoder keeps up with."""
    return write_video(tmp_path / "fast.mp4", constant_rate(400, fps=200), Fraction(1, 1000), (640, 360))


def _settings(tmp_path: Path, clip: Path) -> dict:
    return {
        "sources": [{"url": str(clip), "id": "cam", "realtime": True}],
        "sink_queue_size": 2,
        "sinks": [
            {"type": "jsonl", "path": str(tmp_path / "e.jsonl"), "include_empty": False},
            {"type": "video", "path": str(tmp_path / "v.mp4"), "preset": "veryslow"},
        ],
    }


def _closes(counts: dict) -> bool:
    return counts["received"] == counts["written"] + sum(counts["not_written"].values())


def test_frames_a_sink_did_not_write_are_counted_by_reason(tmp_path: Path, run_cli: CliRunner) -> None:
    clip = _fast_live_clip(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_settings(tmp_path, clip)))
    result = run_cli("run", "-c", config, "--no-progress")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "e.jsonl").read_text().splitlines()[-1])
    assert summary["type"] == "summary"
    video, events = (
        summary["sinks"][f"video:{tmp_path / 'v.mp4'}"],
        summary["sinks"][f"jsonl:{tmp_path / 'e.jsonl'}"],
    )
    assert video["not_written"].get("queue full", 0) > 0, video  # the slow encoder fell behind
    assert _closes(video) and _closes(events)
    assert count_frames(tmp_path / "v.mp4")[0] == video["written"], "the MP4 holds what it says"
    assert len(read_records(tmp_path / "e.jsonl")) == events["written"]
    assert events["not_written"].get("no faces (include_empty: false)", 0) > 0  # the clip has no face
    said = re.search(
        r"sink video:\S+: (\d+) frames received, (\d+) written, (\d+) not written \((.*)\)", result.stderr
    )
    assert said is not None, result.stderr
    assert [int(said[1]), int(said[2]), int(said[3])] == [
        video["received"],
        video["written"],
        sum(video["not_written"].values()),
    ]
    assert f"{video['not_written']['queue full']} queue full" in said[4]


def test_metrics_tell_per_sink_what_was_not_written(tmp_path: Path) -> None:
    clip = _fast_live_clip(tmp_path)
    pipeline = build_pipeline(Settings.model_validate(_settings(tmp_path, clip)))
    report = pipeline.run()
    assert report.ok, report.problems()
    exposition = generate_latest(metrics_registry(pipeline, None)).decode()
    for name, counts in report.sinks.items():
        assert _closes(counts), (name, counts)
        for reason, frames in counts["not_written"].items():
            line = (
                f'streamproc_sink_frames_not_written_total{{reason="{reason}",sink="{name}"}} {float(frames)}'
            )
            assert line in exposition, exposition
    assert report.sinks[f"video:{tmp_path / 'v.mp4'}"]["not_written"]["queue full"] > 0
