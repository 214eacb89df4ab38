"""Hostile media (issue 13, cases 2, 4, 6, 7, 11): variable frame rate, damaged packets, a display
rotation, odd and huge sizes, streams on stdin and named pipes, urls of unknown schemes.
(Truncation is still reported as before: tests/test_bad_input.py.)"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
from conftest import REPO, CliRunner, read_records
from live_run import LiveRun, live_settings, wait_until
from media_gen import constant_rate, damage, ffprobe_frames, variable_rate, write_video
from rtsp_server import RtspServer

from streamproc.capture.buffer import PictureBudget
from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings, VideoSinkSettings
from streamproc.core.frames import Frame, StreamInfo
from streamproc.core.pictures import AvPicture
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import RunReport
from streamproc.sinks.timestamps import Timeline


def _run(
    video: Path, out: Path, blazeface: BlazeFaceDetector, video_out: bool = True, stats: list | None = None
) -> RunReport:
    """Run ``video`` into out/e.jsonl (and out/a.mp4); the final stats snapshot goes into ``stats``."""
    sinks: list = [JsonlSinkSettings(type="jsonl", path=out / "e.jsonl")]
    if video_out:
        sinks.append(VideoSinkSettings(type="video", path=out / "a.mp4"))
    settings = Settings(sources=[SourceSettings(url=str(video))], sinks=sinks, progress=False)
    pipeline = build_pipeline(settings, detector=blazeface)
    report = pipeline.run()
    if stats is not None:
        stats.append(pipeline.stats_snapshot())
    return report


def _times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.pts * stream.time_base) for frame in container.decode(stream)]


def test_variable_frame_rate_stays_variable(tmp_path: Path, blazeface: BlazeFaceDetector) -> None:
    """A phone recording: 25 fps, then 10 fps, timescale 1000."""
    stamps = variable_rate([(30, 25.0), (30, 10.0)])
    video = write_video(tmp_path / "phone.mp4", stamps)
    report = _run(video, tmp_path, blazeface)
    assert report.ok, report.problems()
    written, expected = _times(tmp_path / "a.mp4"), [stamp / 1000 for stamp in stamps]
    assert len(written) == len(expected) == 60
    assert np.allclose(written, expected, atol=1e-3), "every frame keeps its own time"
    assert not (tmp_path / "a.partial.mp4").exists()


def test_timestamps_are_repaired_whatever_arrives() -> None:
    timeline = Timeline(Fraction(1, 1000), fps=25)  # one frame: 40 ticks
    arrived = [None, 40, 40, 20, 120, 5_000_000, 5_000_040, 3, 43]
    fixed = [timeline.next(stamp) for stamp in arrived]
    assert fixed == [0, 40, 80, 120, 160, 200, 240, 280, 320]
    # missing, duplicate, late, taken by the late one, jump forward (> 10 s), jump back
    assert timeline.repairs == 6
    assert all(later > earlier for earlier, later in itertools.pairwise(fixed))


@pytest.mark.slow  # damaged media made with FFmpeg, whole runs
def test_decoding_goes_on_past_damage(
    tmp_path: Path, long_video: Path, blazeface: BlazeFaceDetector, caplog: pytest.LogCaptureFixture
) -> None:
    zeroed = damage(long_video, tmp_path / "zeroed.mp4", at=0.4, length=8192)
    flipped = damage(long_video, tmp_path / "flipped.mp4", at=0.6, length=200, flip=True)
    for video in (zeroed, flipped):
        out = tmp_path / video.stem
        out.mkdir()
        stats: list[dict] = []
        with caplog.at_level(logging.WARNING, logger="streamproc"):
            report = _run(video, out, blazeface, video_out=False, stats=stats)
        (source,) = report.sources
        reference = ffprobe_frames(video)
        print(f"{video.name}: decoded {source.frames_decoded} of 1000, ffprobe {reference}")
        assert report.ok, report.problems()
        assert source.frames_decoded >= reference - 2, "as much as FFmpeg itself decodes"
        warnings = [r.message for r in caplog.records if video.stem in r.message and "damaged" in r.message]
        warning = warnings[0]
        assert "skipped (" in warning and " s to " in warning, warning
        count = stats[0]["sources"][video.stem]["decode_errors"]  # also /api/stats and /metrics
        assert count > 0 and f"{count} damaged packet" in warning
        caplog.clear()


def test_rotation_is_applied(tmp_path: Path, sample_maker: ModuleType, blazeface: BlazeFaceDetector) -> None:
    """A phone held upright: pictures stored sideways, display matrix 90 degrees counter-clockwise."""
    upright = list(sample_maker.iter_frames(width=320, height=192, fps=25, seconds=1.2))
    sideways = [np.rot90(picture, -1) for picture in upright]
    video = write_video(
        tmp_path / "phone.mp4", constant_rate(len(upright)), size=(192, 320), rotation=90, pictures=sideways
    )
    report = _run(video, tmp_path, blazeface)
    assert report.ok, report.problems()
    records = read_records(tmp_path / "e.jsonl")
    assert {(r["width"], r["height"]) for r in records} == {(320, 192)}, "displayed size"
    faces = [face for record in records for face in record["faces"]]
    assert len(faces) >= len(records), "upright faces are found (sideways ones are not)"
    assert all(face["box"][2] <= 321 and face["box"][3] <= 193 for face in faces)
    with av.open(str(tmp_path / "a.mp4")) as container:
        first = next(container.decode(video=0))
        assert (first.width, first.height, first.rotation) == (320, 192, 0)
        picture = first.to_ndarray(format="rgb24").astype(int)
    assert np.abs(picture - upright[0]).mean() < 30, "looks like the input does in a player"


def test_odd_size_is_padded_not_scaled(tmp_path: Path, blazeface: BlazeFaceDetector) -> None:
    video = write_video(tmp_path / "odd.mp4", constant_rate(10), size=(641, 361))
    report = _run(video, tmp_path, blazeface)
    assert report.ok, report.problems()
    assert {(r["width"], r["height"]) for r in read_records(tmp_path / "e.jsonl")} == {(641, 361)}
    with av.open(str(video)) as source, av.open(str(tmp_path / "a.mp4")) as output:
        original = next(source.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        annotated = next(output.decode(video=0))
        assert (annotated.width, annotated.height) == (642, 362)
        kept = annotated.to_ndarray(format="rgb24").astype(int)[:361, :641]
    assert np.abs(kept - original).mean() < 6, "the picture is kept pixel for pixel, not rescaled"


# runs streamproc and prints its peak RSS: VmHWM belongs to the process image (unlike ru_maxrss,
# which keeps what the forked test process held before exec)
_PEAK_RSS = (
    "import atexit, re, runpy, sys; atexit.register(lambda: print('peak', re.search(r'VmHWM:\\s+(\\d+)',"
    " open('/proc/self/status').read())[1], file=sys.stderr)); sys.argv[0] = 'streamproc';"
    " runpy.run_module('streamproc', run_name='__main__')"
)


@pytest.mark.slow  # encodes and decodes a picture of tens of megapixels
def test_huge_picture_memory_is_bounded(tmp_path: Path) -> None:
    video = write_video(tmp_path / "huge.mp4", constant_rate(4), size=(8192, 8192), preset="ultrafast")
    command = [sys.executable, "-c", _PEAK_RSS, "run", video, "--out-video", tmp_path / "a.mp4"]
    command += ["--events", tmp_path / "e.jsonl", "--no-progress"]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    peak_mb = int(completed.stderr.rsplit("peak ", 1)[1].split()[0]) / 1024
    print(f"8192x8192 with --out-video: peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 1536
    assert len(read_records(tmp_path / "e.jsonl")) == 4
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4


def test_stdin_and_named_pipes_are_streams(tmp_path: Path, sample_video: Path, run_cli: CliRunner) -> None:
    events = tmp_path / "stdin.jsonl"
    with open(sample_video, "rb") as stream:
        completed = subprocess.run(
            [sys.executable, "-m", "streamproc", "run", "-", "--events", events, "--no-progress"],
            stdin=stream,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode == 0, completed.stderr
    assert len(read_records(events)) == 100
    pipe = tmp_path / "camera.fifo"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(sample_video.read_bytes()), daemon=True)
    writer.start()
    result = run_cli("run", pipe, "--events", tmp_path / "pipe.jsonl", "--no-progress", timeout=60)
    writer.join(5)
    assert result.returncode == 0, result.stderr
    assert not writer.is_alive(), "the writer is not left blocked"
    assert len(read_records(tmp_path / "pipe.jsonl")) == 100


@pytest.mark.parametrize(
    "url", ["http://admin:hunter2@cam.local/video", "udp://239.0.0.1:1234", "file:///x.mp4"]
)
def test_unknown_url_schemes_are_named(url: str, run_cli: CliRunner) -> None:
    result = run_cli("run", url, "--no-progress", timeout=60)
    scheme = url.split("://")[0]
    assert result.returncode == 1
    assert f"url scheme '{scheme}://' is not supported" in result.stderr
    assert "rtsp://" in result.stderr and "hunter2" not in result.stderr
    assert "does not exist" not in result.stderr


def test_a_real_rtsp_stream_makes_a_playable_video(
    tmp_path: Path, rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    """GStreamer-style streams may start without a timestamp: the sink repairs, never fails."""
    rtsp_server.publish("cam", sample_video)
    sinks = [
        JsonlSinkSettings(type="jsonl", path=tmp_path / "e.jsonl"),
        VideoSinkSettings(type="video", path=tmp_path / "a.mp4"),
    ]
    with LiveRun(live_settings(rtsp_server.url("cam"), sinks=sinks), blazeface) as run:
        wait_until(lambda: len(run.collector.of("s0")) >= 50, 30, "50 frames from the stream")
    report = run.finish()
    assert report.ok, report.problems()
    records = read_records(tmp_path / "e.jsonl")
    times = _times(tmp_path / "a.mp4")
    # a live run's sink queue drops what the encoder cannot keep up with, and counts it
    dropped = run.pipeline.sinks_snapshot()[f"video:{tmp_path / 'a.mp4'}"]["dropped"]
    print(f"RTSP: {len(records)} frames processed, {len(times)} in the video, {dropped} dropped by its queue")
    assert len(times) + dropped == len(records) >= 50, "every frame the sink took is in the video"
    assert all(later > earlier for earlier, later in itertools.pairwise(times))


def test_picture_budget_holds_the_decoder_until_pictures_are_released() -> None:
    """Two 1 MB pictures per source are always allowed; beyond that, only within the budget."""
    budget = PictureBudget(limit=2_500_000)
    info = StreamInfo("a", "a.mp4", 1000, 1000, 25.0, Fraction(1, 25))

    def frame(index: int) -> Frame:
        picture = AvPicture(av.VideoFrame(1000, 1000, "yuv420p"))  # 1.5 MB
        return Frame(info, index, None, None, 0.0, picture)

    kept = [frame(0), frame(1)]
    budget.take(kept[0])
    budget.take(kept[1])
    third = frame(2)
    taken = threading.Event()
    threading.Thread(target=lambda: (budget.take(third), taken.set()), daemon=True).start()
    assert not taken.wait(0.3), "3 x 1.5 MB is over the budget: the decoder waits"
    kept.pop()  # a sink is done with a frame: its bytes come back
    assert taken.wait(1.0)
    assert budget.used == 3_000_000
