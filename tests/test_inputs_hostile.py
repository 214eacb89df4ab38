"""Inputs that crashed or hung (issue 21, items 6-9): a picture size change mid-stream with an
annotated video, a pattern over folders that link to themselves, file names that are not UTF-8,
and files with several video tracks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
import yaml
from conftest import CliRunner, count_frames, read_records

from streamproc.capture.patterns import expand

pytestmark = pytest.mark.slow  # hostile media generated with FFmpeg, whole runs


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True)


def _clip(path: Path, size: str, seconds: float = 1.0) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-t", seconds, "-c:v", "libx264",
            "-pix_fmt", "yuv420p", path)  # fmt: skip
    return path


def test_a_picture_that_grows_mid_stream_is_scaled_into_the_first_size(
    tmp_path: Path, run_cli: CliRunner
) -> None:
    small, large = _clip(tmp_path / "480p.ts", "854x480"), _clip(tmp_path / "960p.ts", "1280x960")
    joined = tmp_path / "s.ts"
    joined.write_bytes(small.read_bytes() + large.read_bytes())  # cat 480p.ts 960p.ts > s.ts
    out = tmp_path / "o.mp4"
    result = run_cli("run", joined, "--out-video", out, "--events", tmp_path / "e.jsonl", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "the picture size changed from 854x480 to 1280x960; the video keeps 854x480" in result.stderr
    assert count_frames(out)[0] == len(read_records(tmp_path / "e.jsonl")) == 50
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert {frame.shape for frame in frames} == {(480, 854)}
    # 4:3 into 16:9: black bars left and right of the scaled picture, none before the change
    first, last = frames[0], frames[-1]
    assert first[:, :40].mean() > 40 and last[:, :100].max() <= 20 and last[:, 110:-110].mean() > 40


def test_photos_of_several_sizes_make_one_annotated_video(
    tmp_path: Path, shared_dir: Path, run_cli: CliRunner
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("face.jpg", "grace_hopper.bmp", "parrot.jpg"):  # three sizes
        shutil.copy(shared_dir / "images" / name, photos / name)
    out = tmp_path / "o.mp4"
    result = run_cli("run", photos, "--out-video", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert count_frames(out)[0] == 3
    first = av.open(str(photos / "face.jpg")).streams.video[0].codec_context
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (
            first.width + first.width % 2,
            first.height + first.height % 2,
        )


def _linked_to_itself(tmp_path: Path, shared_dir: Path) -> Path:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(shared_dir / "images" / "face.jpg", folder / "sub" / "a.jpg")
    shutil.copy(shared_dir / "images" / "parrot.jpg", folder / "b.jpg")
    (folder / "l1").symlink_to(".")
    (folder / "l2").symlink_to(".")
    (folder / "sub" / "up").symlink_to("..")
    return folder


def test_a_pattern_over_folders_that_link_to_themselves_ends(
    tmp_path: Path, shared_dir: Path, run_cli: CliRunner
) -> None:
    folder = _linked_to_itself(tmp_path, shared_dir)
    assert sorted(expand(f"{folder}/**/*.jpg")) == [folder / "b.jpg", folder / "sub" / "a.jpg"]
    started = time.monotonic()
    events = tmp_path / "e.jsonl"
    result = run_cli("run", f"{folder}/**/*.jpg", "--events", events, "--no-progress", timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert sorted(Path(r["image"]).name for r in read_records(events)) == ["a.jpg", "b.jpg"]


def test_ctrl_c_stops_a_pattern_walk(tmp_path: Path) -> None:
    for outer in range(100):  # 10,000 folders: about a second of walking
        for inner in range(100):
            os.makedirs(tmp_path / "big" / str(outer) / str(inner))
    started = time.monotonic()
    expand(f"{tmp_path}/big/**/*.jpg")
    whole = time.monotonic() - started
    timer = threading.Timer(whole / 5, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        expand(f"{tmp_path}/big/**/*.jpg")
        time.sleep(5)  # the walk ended before the signal came: it must still arrive
    assert time.monotonic() - started < whole, "interrupted during the walk"


def test_file_names_that_are_not_utf8(tmp_path: Path, sample_video: Path, shared_dir: Path) -> None:
    name = os.fsdecode(b"cam\xe9ra")
    video = tmp_path / f"{name}.mp4"
    shutil.copy(sample_video, video)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(shared_dir / "images" / "face.jpg", photos / os.fsdecode(b"f\xe9te.jpg"))
    events = tmp_path / "e.jsonl"
    command = [
        "run",
        video,
        photos,
        "--events",
        events,
        "--out-video",
        tmp_path / "{source}.mp4",
        "--no-progress",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "streamproc", *map(os.fsencode, command)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert "Traceback" not in stderr
    records = read_records(events)
    assert {r["source"] for r in records} == {"cam\\xe9ra", "photos"}  # ids are text: escaped bytes
    assert count_frames(tmp_path / "cam\\xe9ra.mp4")[0] == 100
    (photo,) = [r["image"] for r in records if r["source"] == "photos"]
    assert os.fsencode(photo).endswith(b"f\xe9te.jpg"), "the photo's name as the file system has it"


def _two_tracks(tmp_path: Path, sample_video: Path) -> Path:
    """Track 0: a test pattern with no face; track 1: the sample with two faces."""
    pattern = _clip(tmp_path / "pattern.mp4", "320x240", 4.0)
    both = tmp_path / "two.mp4"
    _ffmpeg("-i", pattern, "-i", sample_video, "-map", "0:v", "-map", "1:v", "-c", "copy", both)
    return both


def test_a_file_with_two_video_tracks_says_which_and_lets_the_source_choose(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    both = _two_tracks(tmp_path, sample_video)
    events = tmp_path / "e.jsonl"
    result = run_cli("run", both, "--events", events, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "has 2 video tracks (0: h264 320x240; 1: h264 640x360): reading track 0" in result.stderr
    assert not any(r["faces"] for r in read_records(events))
    for track, expected in ((1, 0), (2, 1)):
        config = tmp_path / f"track{track}.yaml"
        config.write_text(yaml.safe_dump({"sources": [{"url": str(both), "video_track": track}]}))
        events.unlink(missing_ok=True)
        result = run_cli("run", "-c", config, "--events", events, "--no-progress")
        assert result.returncode == expected, result.stderr
        if track == 1:
            records = read_records(events)
            assert len(records) == 100 and sum(bool(r["faces"]) for r in records) >= 90
        else:
            assert "video_track 2 does not exist" in result.stderr and "Traceback" not in result.stderr
