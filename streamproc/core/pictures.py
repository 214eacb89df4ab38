"""Decoded pictures and the conversions they offer.

A picture is what a source decoded (a PyAV frame, or an array from OpenCV or an image file). It
converts itself on demand; which conversions a run makes, on which thread, is decided by the run's
pixel plan (:mod:`streamproc.media.pixels`), not by the picture.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter


class Picture(Protocol):
    """A decoded picture that converts itself on demand."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def rgb(self, width: int, height: int) -> np.ndarray:
        """RGB uint8 array of shape (height, width, 3), scaled with area averaging."""
        ...

    def bgr(self) -> np.ndarray:
        """Full-resolution BGR uint8 array of shape (height, width, 3)."""
        ...

    def yuv420p(self, width: int, height: int) -> av.VideoFrame:
        """A new yuv420p VideoFrame of that size the caller may draw on (the encoder's input)."""
        ...


_thread_local = threading.local()


def reformat(frame: Any, **options: Any) -> Any:
    """Convert/scale a PyAV VideoFrame with a reusable swscale context of this thread.

    A reformatter per call would rebuild the swscale context (and its thread pool) for every
    frame, which costs more than decoding. Reformatters are not thread-safe, so they belong to a
    thread, and a thread that makes several conversions (a sink asking for BGR of one size and
    yuv420p of another) keeps one per conversion: a reformatter rebuilds its context whenever the
    conversion changes.
    """
    reformatters: dict[tuple, VideoReformatter] | None = getattr(_thread_local, "reformatters", None)
    if reformatters is None:
        reformatters = _thread_local.reformatters = {}
    key = (frame.format.name, frame.width, frame.height, *sorted(options.items()))
    reformatter = reformatters.get(key)
    if reformatter is None:
        if len(reformatters) >= 8:  # a camera whose size keeps changing: do not grow without bound
            reformatters.clear()
        reformatter = reformatters[key] = VideoReformatter()
    return reformatter.reformat(frame, threads=1, **options)


def plane_array(plane: Any) -> np.ndarray:
    """A writable (height, width) view of one plane of a VideoFrame, without its row padding."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _encoder_copy(source: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``source`` as yuv420p of that size, never ``source`` itself: other readers share it."""
    converted = reformat(source, format="yuv420p", width=width, height=height)
    if converted is not source:
        return converted
    copy = av.VideoFrame(width, height, "yuv420p")
    for target, plane in zip(copy.planes, source.planes, strict=True):
        np.copyto(plane_array(target), plane_array(plane))
    return copy


class AvPicture:
    """A PyAV VideoFrame; colour conversion and scaling happen in one swscale call."""

    __slots__ = ("_frame",)

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    @property
    def width(self) -> int:
        return self._frame.width

    @property
    def height(self) -> int:
        return self._frame.height

    @property
    def av_frame(self) -> Any:
        return self._frame

    def rgb(self, width: int, height: int) -> np.ndarray:
        # AREA: cheaper than bilinear in swscale and the right filter for a 10-15x downscale
        return reformat(
            self._frame, width=width, height=height, format="rgb24", interpolation="AREA"
        ).to_ndarray()

    def bgr(self) -> np.ndarray:
        return reformat(self._frame, format="bgr24").to_ndarray()

    def yuv420p(self, width: int, height: int) -> av.VideoFrame:
        # a decoded picture usually is yuv420p already: then this is one copy of the planes
        return _encoder_copy(self._frame, width, height)


class ArrayPicture:
    """A numpy array (OpenCV cameras: BGR; still images and the Python API: either), kept in the
    channel order it came in: a 720p RGB array given to the detector is not copied to BGR first."""

    __slots__ = ("_array", "_bgr", "rgb_order")

    def __init__(self, bgr: np.ndarray, rgb_order: bool = False) -> None:
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            order = "RGB" if rgb_order else "BGR"
            raise ValueError(f"expected an (h, w, 3) uint8 {order} picture, got {bgr.shape} {bgr.dtype}")
        self._array = bgr
        self.rgb_order = rgb_order
        self._bgr: np.ndarray | None = None if rgb_order else bgr

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> ArrayPicture:
        return cls(rgb, rgb_order=True)

    @property
    def width(self) -> int:
        return int(self._array.shape[1])

    @property
    def height(self) -> int:
        return int(self._array.shape[0])

    @property
    def array(self) -> np.ndarray:
        """The pixels as given, in ``rgb_order`` (True: RGB, False: BGR)."""
        return self._array

    def rgb(self, width: int, height: int) -> np.ndarray:
        small = cv2.resize(self._array, (width, height), interpolation=cv2.INTER_AREA)
        return small if self.rgb_order else cv2.cvtColor(small, cv2.COLOR_BGR2RGB)

    def bgr(self) -> np.ndarray:
        if self._bgr is None:  # converted once, on the first reader's thread
            self._bgr = cv2.cvtColor(self._array, cv2.COLOR_RGB2BGR)
        return self._bgr

    def yuv420p(self, width: int, height: int) -> av.VideoFrame:
        layout = "rgb24" if self.rgb_order else "bgr24"
        return _encoder_copy(av.VideoFrame.from_ndarray(self._array, format=layout), width, height)


class ReleasedPicture:
    """What is left of a picture once the detector's input is made and the run's pixel plan keeps
    no pixels: its size. Letting the decoded frame go at once keeps the decoder's frame pool at its
    own needs instead of growing with every frame that waits in a buffer (1.4 MB a frame at 720p)."""

    __slots__ = ("height", "width")

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height

    def rgb(self, width: int, height: int) -> np.ndarray:
        raise self._released()

    def bgr(self) -> np.ndarray:
        raise self._released()

    def yuv420p(self, width: int, height: int) -> av.VideoFrame:
        raise self._released()

    @staticmethod
    def _released() -> RuntimeError:
        return RuntimeError(
            "this frame's pixels were released after detection because the run's pixel plan keeps"
            " none: declare the formats you read in pixel_needs() and read them through the plan"
        )
