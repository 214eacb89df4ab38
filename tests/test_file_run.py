"""End-to-end file runs on real video: every frame processed, annotated MP4 true to the input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, CliRunner, count_frames, read_records

from streamproc.config.settings import PICTURE_QUEUE_LIMIT, JsonlSinkSettings, Settings, SourceSettings
from streamproc.core.frames import Detections, FrameResult
from streamproc.core.pictures import AvPicture, ReleasedPicture
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan, PixelPlanError
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import Pipeline
from streamproc.sinks.base import Sink


def file_to_jsonl(video: Path, events: Path) -> Settings:
    """What ``streamproc run VIDEO --events EVENTS`` runs."""
    return Settings(
        sources=[SourceSettings(url=str(video))], sinks=[JsonlSinkSettings(type="jsonl", path=events)]
    )


def test_cli_run_writes_every_frame_and_a_true_annotated_video(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    events, video = tmp_path / "events.jsonl", tmp_path / "annotated.mp4"
    result = run_cli("run", sample_video, "--events", events, "--out-video", video, "--no-progress")
    assert result.returncode == 0, result.stderr

    frames_in, duration_in = count_frames(sample_video)
    records = read_records(events)
    assert [record["frame"] for record in records] == list(range(frames_in))
    pts = [record["pts"] for record in records]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    with_faces = sum(1 for record in records if record["faces"])
    assert with_faces >= 0.9 * frames_in, f"faces found in only {with_faces}/{frames_in} frames"

    frames_out, duration_out = count_frames(video)
    assert frames_out == frames_in
    assert duration_out == pytest.approx(duration_in, abs=1e-3)


def test_a_files_status_events_carry_its_picture_size(sample_video: Path, tmp_path: Path) -> None:
    """As a camera's do: the `streaming` line of a file says how big its pictures are."""
    events = tmp_path / "e.jsonl"
    settings = Settings(
        sources=[SourceSettings(url=str(sample_video))], sinks=[JsonlSinkSettings(type="jsonl", path=events)]
    )
    assert build_pipeline(settings).run().ok
    status = read_records(events, "status")
    assert [(s["state"], s["width"], s["height"]) for s in status] == [
        ("streaming", 640, 360),
        ("stopped", 640, 360),
    ]


def test_annotated_video_shows_the_boxes(tmp_path: Path, sample_video: Path, run_cli: CliRunner) -> None:
    import av

    video = tmp_path / "annotated.mp4"
    events = tmp_path / "events.jsonl"
    assert (
        run_cli("run", sample_video, "--out-video", video, "--events", events, "--no-progress").returncode
        == 0
    )
    record = next(r for r in read_records(events) if r["faces"])
    with av.open(str(video)) as out, av.open(str(sample_video)) as original:
        drawn = next(f for i, f in enumerate(out.decode(video=0)) if i == record["frame"]).to_ndarray(
            format="bgr24"
        )
        plain = next(f for i, f in enumerate(original.decode(video=0)) if i == record["frame"]).to_ndarray(
            format="bgr24"
        )
    x1, y1, _x2, y2 = (round(v) for v in record["faces"][0]["box"])
    edge = np.s_[max(y1, 0) : y2, max(x1 - 1, 0) : x1 + 2]  # the box's left edge
    diff = np.abs(drawn[edge].astype(int) - plain[edge].astype(int)).mean()
    assert diff > 20, "no box drawn where the face was detected"


def test_pipeline_detections_match_detector_on_decoded_frames(sample_video: Path, tmp_path: Path) -> None:
    import av

    events = tmp_path / "e.jsonl"
    settings = file_to_jsonl(sample_video, events)
    report = build_pipeline(settings).run()
    assert report.ok and report.frames_processed == count_frames(sample_video)[0]

    detector = BlazeFaceDetector("short")
    records = read_records(events)
    with av.open(str(sample_video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 10:
                continue
            expected = detector.detect(detector.prepare(AvPicture(frame)))
            got = records[index]["faces"]
            assert len(got) == len(expected)
            for face, exp_box in zip(got, expected.boxes, strict=True):
                assert np.allclose(face["box"], exp_box, atol=0.01)


class ExplodingSink(Sink):
    """A plugin with a bug: fails on its third frame."""

    name = "exploding"

    def __init__(self) -> None:
        self.seen = 0

    def handle(self, result: FrameResult) -> None:
        self.seen += 1
        if self.seen == 3:
            raise RuntimeError("disk on fire")


def test_failing_sink_is_reported_and_others_continue(sample_video: Path, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    settings = file_to_jsonl(sample_video, events)
    report = build_pipeline(settings, extra_sinks=[ExplodingSink()]).run()
    assert report.sink_errors == {
        "exploding": "disk on fire (98 frames not written, from the one it failed on)"
    }
    assert report.sinks["exploding"] == {"received": 100, "written": 2, "not_written": {"sink failed": 98}}
    assert report.sinks[f"jsonl:{events}"] == {"received": 100, "written": 100, "not_written": {}}
    assert not report.ok
    assert len(read_records(events)) == count_frames(sample_video)[0]


class PictureProbe(Sink):
    """Reads each frame's full-resolution pixels when it declared them, as a drawing or cropping sink
    would; otherwise records whether the frame still holds its decoded picture."""

    name = "probe"

    def __init__(self, declares: bool) -> None:
        self.declares = declares
        self.shapes: list[tuple[int, ...]] = []
        self.released = 0
        self._bgr: BgrReader | None = None

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR}) if self.declares else frozenset()

    def open(self, pixels: PixelPlan) -> None:
        if self.declares:
            self._bgr = pixels.bgr(self)

    def handle(self, result: FrameResult) -> None:
        time.sleep(0.02)  # far slower than detection, even on a loaded machine: its queue fills up
        if self._bgr is not None:
            self.shapes.append(self._bgr(result.frame).shape)
        self.released += isinstance(result.frame.picture, ReleasedPicture)


class UndeclaredReader(Sink):
    """A plugin with a bug: reads pixels it never declared."""

    name = "undeclared-reader"

    def handle(self, result: FrameResult) -> None:
        pass

    def open(self, pixels: PixelPlan) -> None:
        pixels.bgr(self)


def test_a_sink_reading_undeclared_pixels_fails_at_start_up(sample_video: Path, tmp_path: Path) -> None:
    settings = file_to_jsonl(sample_video, tmp_path / "e.jsonl")
    with pytest.raises(PixelPlanError, match=r"undeclared-reader reads bgr pixels.*pixel_needs"):
        build_pipeline(settings, extra_sinks=[UndeclaredReader()])


def test_frames_keep_their_pixels_only_while_a_sink_needs_them(sample_video: Path, tmp_path: Path) -> None:
    """Without a sink that declares it reads pixels, frames let the decoded picture go once the
    detector's input is made; detections are the same either way. A sink that keeps whole frames
    queues at most PICTURE_QUEUE_LIMIT of them, whatever sink_queue_size says."""
    frames = count_frames(sample_video)[0]
    boxes = {}
    deepest = {}
    for needs in (False, True):
        events = tmp_path / f"needs-{needs}.jsonl"
        settings = file_to_jsonl(sample_video, events)
        probe = PictureProbe(needs)
        pipeline = build_pipeline(settings, extra_sinks=[probe])
        depths = [0]

        def record_depth(_: FrameResult, pipeline: Pipeline = pipeline, depths: list[int] = depths) -> None:
            depths.append(pipeline.sinks_snapshot()["probe"]["queued"])

        assert pipeline.run(progress=record_depth).ok
        deepest[needs] = max(depths)
        if needs:
            assert probe.shapes == [(360, 640, 3)] * frames and not probe.released
        else:
            assert not probe.shapes and probe.released == frames
        boxes[needs] = [[face["box"] for face in record["faces"]] for record in read_records(events, "frame")]
    assert len(boxes[False]) == frames and boxes[False] == boxes[True]
    # (the queue also carries the odd status change, hence the small margin)
    assert PICTURE_QUEUE_LIMIT // 2 < deepest[True] <= PICTURE_QUEUE_LIMIT + 2 < deepest[False]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_gives_clean_shutdown(tmp_path: Path, long_video: Path, signum: int) -> None:
    events, video = tmp_path / "e.jsonl", tmp_path / "a.mp4"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc",
            "run",
            str(long_video),
            "--events",
            str(events),
            "--out-video",
            str(video),
            "--no-progress",
            "--threads",
            "1",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    deadline = time.monotonic() + 60
    # 20 frame records (event lines are written between them)
    while (
        not events.exists() or events.read_text().count('"type":"frame"') < 20
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "finishing queued frames" in stderr
    written = len(read_records(events))
    total = count_frames(long_video)[0]
    assert 20 <= written < total, "the run should have stopped early"
    assert count_frames(video)[0] == written, "every processed frame is in the playable MP4"


def test_labels_carry_the_track_number() -> None:
    from streamproc.sinks.draw import _label_text

    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    detections = Detections(
        boxes,
        np.array([0.93, 0.61], np.float32),
        np.zeros((2, 6, 2), np.float32),
        track_ids=("20261125T125859Z-352b-3", None),
    )
    assert _label_text(detections, 0) == "#3 face 0.93"
    assert _label_text(detections, 1) == "face 0.61"  # not confirmed yet: no number
