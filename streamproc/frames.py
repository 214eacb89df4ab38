"""The envelopes that travel through the pipeline: Frame, Detections and FrameResult.

A Frame wraps the decoded picture and converts pixels lazily: the detector asks for a small
RGB picture at its input size, and only sinks that draw or crop ask for full resolution.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Protocol

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


class ArrayPicture:
    """A BGR numpy array (OpenCV cameras, still images)."""

    __slots__ = ("_bgr",)

    def __init__(self, bgr: np.ndarray) -> None:
        self._bgr = bgr

    @property
    def width(self) -> int:
        return int(self._bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self._bgr.shape[0])

    def rgb(self, width: int, height: int) -> np.ndarray:
        small = cv2.resize(self._bgr, (width, height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)

    def bgr(self) -> np.ndarray:
        return self._bgr


class ReleasedPicture:
    """What is left of a picture once the detector's input is made and nothing else needs pixels:
    its size. Letting the decoded frame go at once keeps the decoder's frame pool at its own needs
    instead of growing with every frame that waits in a buffer (1.4 MB a frame at 720p)."""

    __slots__ = ("height", "width")

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height

    def rgb(self, width: int, height: int) -> np.ndarray:
        raise self._released()

    def bgr(self) -> np.ndarray:
        raise self._released()

    @staticmethod
    def _released() -> RuntimeError:
        return RuntimeError(
            "this frame's pixels were released after detection because no stage declared that it needs"
            " pictures: set needs_pictures = True on the sink (or stage) that reads them"
        )


@dataclass(frozen=True)
class StreamInfo:
    """What is known about a source's video stream once it is open."""

    source_id: str
    url: str
    width: int
    height: int
    fps: float
    time_base: Fraction
    total_frames: int | None = None  # None for live streams or containers without a count
    live: bool = False
    still: bool = False  # a photo: one frame, unrelated to the source's other frames


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame of one source.

    ``pts`` is the media time in seconds (None when the container has none), ``pts_raw`` the
    timestamp in ``stream.time_base`` units, ``wall_time`` the capture time (``time.time()``).
    """

    stream: StreamInfo
    index: int
    pts: float | None
    pts_raw: int | None
    wall_time: float
    picture: Picture
    keyframe: bool = False
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # derived values nest

    @property
    def source_id(self) -> str:
        return self.stream.source_id

    @property
    def width(self) -> int:
        return self.picture.width

    @property
    def height(self) -> int:
        return self.picture.height

    def rgb(self, width: int, height: int) -> np.ndarray:
        """Scaled RGB picture, converted once per size (the capture thread prepares the detector's)."""
        return self.derived(f"rgb{width}x{height}", lambda: self.picture.rgb(width, height))

    def bgr(self) -> np.ndarray:
        """Full-resolution BGR picture, converted once and shared by every sink that asks.

        Treat it as read-only: draw on a copy.
        """
        return self.derived("bgr", self.picture.bgr)

    def without_pixels(self) -> Frame:
        """This frame with only its size and what was already derived from it (the detector's
        input): for runs where no sink or stage draws or crops."""
        return replace(self, picture=ReleasedPicture(self.width, self.height))

    def derived(self, key: str, convert: Callable[[], np.ndarray]) -> np.ndarray:
        """An array computed once from this frame under ``key`` and shared, read-only, by every
        thread that asks: pictures, or the detector's input made ahead in the capture thread."""
        with self._lock:
            image = self._cache.get(key)
            if image is None:
                image = convert()
                image.flags.writeable = False
                self._cache[key] = image
            return image


@dataclass(frozen=True)
class Detections:
    """Faces found in one picture, as parallel arrays in full-frame pixel coordinates.

    boxes: (n, 4) float32 [x1, y1, x2, y2]; scores: (n,) float32; keypoints: (n, k, 2) float32.
    ``extra`` holds further per-detection columns (each with first dimension n).
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls, num_keypoints: int = 6) -> Detections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            keypoints=np.zeros((0, num_keypoints, 2), np.float32),
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index: Any) -> Detections:
        """Slice or fancy-index like a numpy array; always returns Detections."""
        if isinstance(index, int | np.integer):
            index = slice(index, index + 1) if index != -1 else slice(-1, None)
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            keypoints=self.keypoints[index],
            extra={name: column[index] for name, column in self.extra.items()},
        )

    def to_records(self, ndigits: int = 2) -> list[dict[str, Any]]:
        """JSON-ready list: one dict per detection with box, score, keypoints and the extra columns
        (e.g. ``track_id``); values with ``to_dict`` are converted, None values are left out."""
        boxes = np.round(self.boxes.astype(np.float64), ndigits).tolist()
        keypoints = np.round(self.keypoints.astype(np.float64), ndigits).tolist()
        scores = np.round(self.scores.astype(np.float64), 4).tolist()
        records = [
            {"box": box, "score": score, "keypoints": points}
            for box, score, points in zip(boxes, scores, keypoints, strict=True)
        ]
        for name, column in self.extra.items():
            values = list(column) if column.dtype == object else column.tolist()
            for record, value in zip(records, values, strict=True):
                if value is not None:
                    record[name] = value.to_dict() if hasattr(value, "to_dict") else value
        return records


@dataclass(frozen=True)
class FrameResult:
    """A frame with what inference found in it; what sinks receive."""

    frame: Frame
    detections: Detections
    inference_ms: float = 0.0
    events: tuple[Any, ...] = ()  # track events raised by this frame (tracking adds them)
