"""Outputs that destroy things, second hostile pass (issue 21, items 1-5): photo inputs, devices and
pipes as outputs, what a failed run replaces, two runs on one output, a folder as output."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import REPO, CliRunner, count_frames, read_records

from streamproc.config.settings import JsonlSinkSettings, SourceSettings, VideoSinkSettings
from streamproc.core.atomic_files import is_stream, partial_path
from streamproc.core.locks import OutputInUseError, OutputLocks
from streamproc.pipeline.output_checks import check_outputs, input_files
from streamproc.sinks.mp4 import CrashSafeMp4


@pytest.fixture
def photos(tmp_path: Path, shared_dir: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("face.jpg", "parrot.jpg"):
        shutil.copy(shared_dir / "images" / name, folder / name)
    return folder


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "how",
    [
        ["PHOTO", "--out-video", "PHOTO"],
        ["FOLDER", "--events", "PHOTO", "--overwrite", "replace"],
        ["FOLDER/*.jpg", "--events", "PHOTO", "--overwrite", "replace"],
        ["FOLDER/*.jpg", "--out-video", "PHOTO"],
    ],
)
def test_a_photo_input_is_never_an_output(photos: Path, run_cli: CliRunner, how: list[str]) -> None:
    before = _contents(photos)
    photo = photos / "face.jpg"
    args = [arg.replace("FOLDER", str(photos)).replace("PHOTO", str(photo)) for arg in how]
    result = run_cli("run", *args, "--no-progress")
    assert result.returncode == 2, result.stderr
    assert "the input of source" in result.stderr and "Traceback" not in result.stderr
    assert _contents(photos) == before, "no photo changed, nothing added"


def _fake_null(folder: Path) -> Path:
    """A character device like /dev/null (1, 3), made in a temporary folder."""
    node = folder / "fakenull"
    subprocess.run(["mknod", "-m", "666", str(node), "c", "1", "3"], check=True)
    return node


def _same_device(node: Path) -> None:
    info = node.lstat()
    assert stat.S_ISCHR(info.st_mode), f"{node} is no longer a device"
    assert (os.major(info.st_rdev), os.minor(info.st_rdev)) == (1, 3)


@pytest.mark.parametrize(
    "output",
    [["--out-video", "NODE"], ["--events", "NODE", "--overwrite", "replace"], ["--events", "NODE"]],
)
def test_a_device_output_is_written_in_place_never_replaced(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner, output: list[str]
) -> None:
    node = _fake_null(tmp_path)
    args = [arg.replace("NODE", str(node)) for arg in output]
    result = run_cli("run", sample_video, *args, "--no-progress")
    assert result.returncode == 0, result.stderr
    _same_device(node)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fakenull"], "nothing written beside it"


def test_a_video_into_a_named_pipe_is_a_playable_stream(tmp_path: Path, sample_video: Path) -> None:
    pipe = tmp_path / "video.pipe"
    os.mkfifo(pipe)
    received = tmp_path / "received.mp4"
    reader = subprocess.Popen(["sh", "-c", f"cat '{pipe}' > '{received}'"])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamproc",
            "run",
            str(sample_video),
            "--out-video",
            str(pipe),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    reader.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(pipe.lstat().st_mode), "the pipe is still a pipe"
    assert count_frames(received)[0] == 100


def test_a_socket_or_a_folder_output_is_refused_at_start(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    import socket

    folder = tmp_path / "x.mp4"
    folder.mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s.sock"))
        for output, said in ((folder, "is a folder"), (tmp_path / "s.sock", "is a socket")):
            started = time.monotonic()
            result = run_cli("run", sample_video, "--out-video", output, "--no-progress")
            assert result.returncode == 2, result.stderr
            assert said in result.stderr and "Traceback" not in result.stderr
            assert "writing annotated video" not in result.stderr, "refused before any frame"
            assert time.monotonic() - started < 30
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.sock", "x.mp4"]
    assert not list(folder.iterdir())


def test_a_failed_run_replaces_no_file_that_was_there(
    tmp_path: Path, sample_video: Path, run_cli: CliRunner
) -> None:
    truncated = tmp_path / "t.mp4"
    truncated.write_bytes(sample_video.read_bytes()[:40000])  # 49 of 100 frames decode
    events, video = tmp_path / "e.jsonl", tmp_path / "v.mp4"
    events.write_text('{"old": 1}\n')
    shutil.copy(sample_video, video)
    old_video = video.read_bytes()
    args = ("run", truncated, "--events", events, "--overwrite", "replace", "--out-video", video)
    result = run_cli(*args, "--no-progress")
    assert result.returncode == 1, result.stderr
    assert events.read_text() == '{"old": 1}\n' and video.read_bytes() == old_video
    kept = tmp_path / "e.partial.jsonl", tmp_path / "v.partial.mp4"
    assert "its output is kept as" in result.stderr
    assert read_records(kept[0]) and count_frames(kept[1])[0] > 0, "what the run wrote is kept, valid"
    # where no file was there before, a failed run's output is written as usual
    for path in (*kept, events, video):
        path.unlink()
    result = run_cli(*args, "--no-progress")
    assert result.returncode == 1
    assert read_records(events) and count_frames(video)[0] > 0
    assert not any(path.exists() for path in kept)


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(
    tmp_path: Path, long_video: Path, run_cli: CliRunner
) -> None:
    events, video = tmp_path / "same.jsonl", tmp_path / "same.mp4"
    config = tmp_path / "paced.yaml"  # paced like a camera: the first run lasts 40 s unless stopped
    config.write_text(f"sources:\n  - url: {long_video}\n    realtime: true\n")
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc",
            "run",
            "-c",
            str(config),
            "--events",
            str(events),
            "--out-video",
            str(video),
            "--no-progress",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not events.exists() or not events.stat().st_size:
            assert time.monotonic() < deadline and first.poll() is None, "the first run writes"
            time.sleep(0.2)
        for output in (["--events", str(events)], ["--out-video", str(video)]):
            second = run_cli("run", long_video, *output, "--no-progress")
            assert second.returncode == 2, second.stderr
            assert "is being written by another run" in second.stderr
            assert f"(process {first.pid})" in second.stderr
    finally:
        first.terminate()
        first.wait(timeout=60)
    ids = [record["frame"] for record in read_records(events)]
    assert len(ids) == len(set(ids)), "one run's lines only"
    assert not (tmp_path / "same.partial.mp4").exists() and count_frames(video)[0] > 0


def test_locks_are_released_with_the_run_and_refused_meanwhile(tmp_path: Path, sample_video: Path) -> None:
    inputs = input_files([SourceSettings(url=str(sample_video))], ["sample"])
    sinks = [
        JsonlSinkSettings(type="jsonl", path=tmp_path / "e.jsonl"),
        VideoSinkSettings(type="video", path=tmp_path / "v.mp4"),
    ]
    held = check_outputs(sinks, inputs)
    with pytest.raises(OutputInUseError, match=rf"process {os.getpid()}"):
        check_outputs(sinks, inputs)
    held.release()
    assert sorted(path.name for path in tmp_path.iterdir()) == [], "files made only for locking are removed"
    again = check_outputs(sinks, inputs)
    again.release()
    assert isinstance(again, OutputLocks)


def test_open_files_by_name_are_streams_even_when_they_lead_to_a_file(tmp_path: Path) -> None:
    """/dev/stdout redirected to a file is still standard output: nothing is renamed over it (only
    the names are looked at here: a test writes to no real device)."""
    link = tmp_path / "out"
    link.symlink_to("/proc/self/fd/1")
    assert all(is_stream(Path(name)) for name in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", str(link)))
    regular = tmp_path / "regular.jsonl"
    regular.write_text("")
    assert not is_stream(regular) and not is_stream(tmp_path / "new.mp4")


def test_a_video_that_cannot_be_written_leaves_no_descriptor_open(tmp_path: Path) -> None:
    """A live run retries a full disk with a new file each time: none may keep a descriptor (the
    soak found FFmpeg's own close leaves it open after a write error). The partial file here is a
    device like /dev/full (1, 7), made in a temporary folder."""
    target = tmp_path / "x.mp4"
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        subprocess.run(["mknod", "-m", "666", str(partial_path(target)), "c", "1", "7"], check=True)
        video = CrashSafeMp4(target, 64, 64, Fraction(1, 10), Fraction(10), {"preset": "ultrafast"})
        with pytest.raises(OSError, match="No space left"):
            for index in range(100):
                frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
                frame.pts = index
                video.write(frame)
        assert video.abandon(aside=True) is None, "nothing playable: not kept"
    assert len(os.listdir("/proc/self/fd")) == before
    assert not list(tmp_path.iterdir())
