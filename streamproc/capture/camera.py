"""Local cameras (USB, CSI) through OpenCV's V4L2 backend: /dev/videoN or camera:N."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import cv2

from streamproc.capture.base import StatusListener
from streamproc.capture.live import Capture, LiveSource, LiveSourceError
from streamproc.config.settings import CameraSettings, LiveSettings
from streamproc.core.errors import InputError
from streamproc.core.frames import StreamInfo
from streamproc.core.pictures import ArrayPicture

DEFAULT_FPS = 30.0  # what we assume when the driver does not say


class VideoCapture(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source uses."""

    def isOpened(self) -> bool: ...  # OpenCV's name

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[str], VideoCapture]


def open_v4l2(device: str) -> VideoCapture:
    return cv2.VideoCapture(device, cv2.CAP_V4L2)


class _CameraConnection:
    """An opened camera: reads BGR frames until the device stops delivering."""

    def __init__(self, capture: VideoCapture, info: StreamInfo) -> None:
        self._capture = capture
        self.info = info

    def captures(self) -> Iterator[Capture | None]:
        idle = 1.0 / (self.info.fps or DEFAULT_FPS)
        while True:
            ok, image = self._capture.read()
            if not ok or image is None:
                yield None  # no frame: the stall timeout decides when to reopen
                time.sleep(idle)  # an unplugged camera fails at once: do not spin
                continue
            yield Capture(ArrayPicture(image), None)

    def close(self) -> None:
        self._capture.release()


class CameraSource(LiveSource):
    """A V4L2 camera, asked for the configured width, height and fps."""

    def __init__(
        self,
        source_id: str,
        device: Path,
        live: LiveSettings,
        camera: CameraSettings,
        listener: StatusListener | None = None,
        rng: random.Random | None = None,
        open_capture: CaptureFactory = open_v4l2,
    ) -> None:
        super().__init__(source_id, str(device), live, listener, rng)
        self.device = device
        self.camera = camera
        self._open_capture = open_capture

    def _check(self) -> None:
        if not self.device.exists():
            raise InputError(
                f"camera {self.device} does not exist: is it plugged in? (list cameras with ls /dev/video*)"
            )

    def _connect(self) -> _CameraConnection:
        if not self.device.exists():
            raise LiveSourceError(f"{self.device} is gone (camera unplugged?)")
        capture = self._open_capture(str(self.device))
        if not capture.isOpened():
            capture.release()
            raise LiveSourceError(f"OpenCV cannot open {self.device} as a V4L2 camera")
        wanted = self.camera
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, wanted.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, wanted.height),
            (cv2.CAP_PROP_FPS, wanted.fps),
        ):
            if value is not None:
                capture.set(prop, float(value))
        # the driver picks the nearest mode it has: report what we got, not what we asked for
        info = StreamInfo(
            source_id=self.source_id,
            url=self.url,
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(capture.get(cv2.CAP_PROP_FPS)) or wanted.fps or DEFAULT_FPS,
            time_base=Fraction(1, 1000),
            live=True,
        )
        return _CameraConnection(capture, info)
