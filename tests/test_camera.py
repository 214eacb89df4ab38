"""Local cameras. No camera exists on these machines: the errors for a missing or unusable device
run for real (real OpenCV, real device nodes); the frame path runs with a stand-in for
``cv2.VideoCapture`` that serves the sample's frames."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from conftest import CliRunner
from live_run import wait_until

from streamproc.capture.buffer import BufferPolicy, FrameScheduler
from streamproc.capture.camera import CameraSource
from streamproc.config.settings import CameraSettings, LiveSettings
from streamproc.core.frames import Frame, SourceState, StatusEvent
from streamproc.inference.blazeface import BlazeFaceDetector

FAST_RETRIES = {"stall_timeout": 0.5, "reconnect": {"initial": 0.05, "max": 0.2}, "give_up_after": 0}


@pytest.mark.parametrize("url", ["/dev/video97", "camera:98"])
def test_missing_camera_is_a_clear_error(run_cli: CliRunner, url: str) -> None:
    device = "/dev/video" + url.rsplit("video", 1)[-1].removeprefix("camera:")
    assert not Path(device).exists(), f"this test needs {device} to be absent"
    result = run_cli("run", url, "--no-progress")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"camera {device} does not exist" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def run_source(source: CameraSource, until: Any, timeout: float = 20) -> list[Frame]:
    """Run a camera source into a buffer until ``until(frames)`` holds, then stop it."""
    scheduler = FrameScheduler()
    source.open()
    source.bind(scheduler.add_buffer(source.source_id, 1000, BufferPolicy.BLOCK))
    frames: list[Frame] = []
    source.start()
    try:
        wait_until(lambda: until(frames, scheduler), timeout, "the camera source")
    finally:
        source.stop()
        source.join(5)
    return frames


def drain(frames: list[Frame], scheduler: FrameScheduler) -> None:
    while (frame := scheduler.next_frame(timeout=0)) is not None:
        frames.append(frame)


def test_device_that_is_not_a_camera_fails_after_retries() -> None:
    """Real OpenCV V4L2 backend, asked to open /dev/null."""
    events: list[StatusEvent] = []
    live = LiveSettings.model_validate({**FAST_RETRIES, "reconnect": {"initial": 0.05, "max_attempts": 2}})
    source = CameraSource("null", Path("/dev/null"), live, CameraSettings(), events.append)
    run_source(source, lambda frames, _: source.state is SourceState.FAILED)
    assert [event.state for event in events] == [
        SourceState.CONNECTING,
        SourceState.RECONNECTING,
        SourceState.FAILED,
    ]
    assert "OpenCV cannot open /dev/null as a V4L2 camera" in events[-1].message


class FakeCamera:
    """Stands in for ``cv2.VideoCapture`` (no camera here): serves BGR frames, remembers what it
    was asked for, and after ``unplug_after`` frames returns no frame, as an unplugged camera does."""

    def __init__(self, frames: list[np.ndarray], unplug_after: int | None = None) -> None:
        self._frames = frames
        self._unplug_after = unplug_after
        self._served = 0
        self.requested: dict[int, float] = {}
        self.released = threading.Event()

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        self.requested[prop] = value
        return True

    def get(self, prop: int) -> float:
        height, width = self._frames[0].shape[:2]
        actual = {cv2.CAP_PROP_FRAME_WIDTH: width, cv2.CAP_PROP_FRAME_HEIGHT: height, cv2.CAP_PROP_FPS: 25}
        return float(actual.get(prop, 0))

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._unplug_after is not None and self._served >= self._unplug_after:
            return False, None
        frame = self._frames[self._served % len(self._frames)]
        self._served += 1
        return True, frame.copy()

    def release(self) -> None:
        self.released.set()


def test_camera_frames_reach_the_detector_and_an_unplug_reconnects(
    sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    with av.open(str(sample_video)) as container:
        pictures = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    cameras = [FakeCamera(pictures, unplug_after=30), FakeCamera(pictures)]
    opened: list[FakeCamera] = []

    def open_capture(device: str) -> FakeCamera:
        assert device == "/dev/null"
        opened.append(cameras[len(opened)])
        return opened[-1]

    events: list[StatusEvent] = []
    wanted = CameraSettings(width=640, height=360, fps=25)
    live = LiveSettings.model_validate(FAST_RETRIES)
    source = CameraSource("desk", Path("/dev/null"), live, wanted, events.append, open_capture=open_capture)

    def enough(frames: list[Frame], scheduler: FrameScheduler) -> bool:
        drain(frames, scheduler)
        return len(frames) >= 60

    frames = run_source(source, enough)

    assert [event.state for event in events][:4] == [
        SourceState.CONNECTING,
        SourceState.STREAMING,
        SourceState.RECONNECTING,
        SourceState.STREAMING,
    ]
    assert "stalled: no frame for 0.5 s" in events[2].message
    assert len(opened) == 2 and opened[0].released.is_set()
    asked = {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 360, cv2.CAP_PROP_FPS: 25}
    assert opened[0].requested == asked
    assert [frame.index for frame in frames] == list(range(len(frames)))
    pts = [frame.pts for frame in frames]
    assert all(b > a for a, b in itertools.pairwise(pts)), "time goes on across the reconnect"
    assert frames[0].stream.live and (frames[0].width, frames[0].height) == (640, 360)
    # the pictures are the sample's: the detector finds its faces in them
    faces = [len(blazeface.detect(blazeface.prepare(f.picture))) for f in frames[::10]]
    assert all(count >= 1 for count in faces), faces
