"""The core records that travel through the pipeline: frames, detections, results and status.

A Frame carries the decoded picture (:mod:`streamproc.core.pictures`) and the detector's model input,
made once on the capture thread. Which other pixels a run reads is the pixel plan's business
(:mod:`streamproc.media.pixels`); a frame only caches what the plan's readers ask of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from streamproc.core import rounding
from streamproc.core.events import Event
from streamproc.core.pictures import Picture, ReleasedPicture


class SourceState(StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"  # ended normally: end of file or asked to stop
    FAILED = "failed"  # ended with an error


@dataclass(frozen=True)
class StatusEvent:
    """A source changed state."""

    source_id: str
    state: SourceState
    message: str
    wall_time: float
    width: int | None = None  # the picture size when the event was sent (live sources: current)
    height: int | None = None


@dataclass(frozen=True, eq=False)
class ModelInput:
    """A detector's input for one picture, and what ``detect`` needs to map results back to it. It
    lives here, not with the detectors, because frames carry it (the core knows no models)."""

    detector: str  # the name of the detector that made it: another detector must not take it
    tensor: np.ndarray  # model input, batch first; read-only
    width: int  # the picture's size
    height: int


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
    media_file: str | None = None  # a file sinks may read again for its audio: not a stream, pipe or loop


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame of one source.

    ``pts`` is the media time in seconds (None when the container has none), ``pts_raw`` the
    timestamp in ``stream.time_base`` units, ``wall_time`` the capture time (``time.time()``).
    ``model_input`` is the detector's input, made on the capture thread (None until then).
    """

    stream: StreamInfo
    index: int
    pts: float | None
    pts_raw: int | None
    wall_time: float
    picture: Picture
    keyframe: bool = False
    model_input: ModelInput | None = None
    _cache: dict[tuple[str, int, int], np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def source_id(self) -> str:
        return self.stream.source_id

    @property
    def width(self) -> int:
        return self.picture.width

    @property
    def height(self) -> int:
        return self.picture.height

    def prepared(self, model_input: ModelInput, keep_pixels: bool) -> Frame:
        """This frame with its model input, and without its pixels unless the run keeps them."""
        picture = self.picture if keep_pixels else ReleasedPicture(self.width, self.height)
        return replace(self, model_input=model_input, picture=picture)

    def cached(self, key: tuple[str, int, int], convert: Any) -> np.ndarray:
        """An array converted once from this frame and shared, read-only, by every thread that asks
        (see :class:`streamproc.media.pixels.PixelPlan`, whose readers are how stages and sinks get
        pixels)."""
        with self._lock:
            image = self._cache.get(key)
            if image is None:
                image = convert()
                image.flags.writeable = False
                self._cache[key] = image
            return image


def _float_array(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """``value`` as a float32 array of ``shape`` (None: any length), or a ValueError naming it."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"Detections.{name} must be numeric, got {array.dtype}")
    array = array.astype(np.float32, copy=False)
    fits = array.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(array.shape, shape, strict=False)
    )
    if not fits:
        wanted = "(" + ", ".join("n" if d is None else str(d) for d in shape) + ")"
        raise ValueError(f"Detections.{name} must have shape {wanted}, got {array.shape}")
    return array


@dataclass(frozen=True)
class Detections:
    """Faces found in one picture, as parallel arrays in full-frame pixel coordinates.

    boxes: (n, 4) float32 [x1, y1, x2, y2]; scores: (n,) float32; keypoints: (n, k, 2) float32;
    track_ids: (n,) ids of the confirmed tracks the faces belong to (None: not tracked), or empty
    when nothing tracks. ``extra`` holds further per-detection columns (each with first dimension n).
    ``cover``: (m, 4) regions a redacting sink hides (heads of the faces found at redaction's own
    threshold and of tracked faces the detector missed), or None when no redaction stage ran;
    ``cover_back``: regions to hide on the frames before this one too (a face first seen here).
    Validated on construction: wrong shapes or lengths raise ValueError.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    track_ids: tuple[str | None, ...] = ()
    cover: np.ndarray | None = None
    cover_back: np.ndarray | None = None

    def __post_init__(self) -> None:
        scores = _float_array("scores", self.scores, (None,))
        count = scores.shape[0]
        boxes = _float_array("boxes", self.boxes, (count, 4))
        keypoints = _float_array("keypoints", self.keypoints, (count, None, 2))
        for name, column in self.extra.items():
            if len(column) != count:
                raise ValueError(f"Detections.extra[{name!r}] has {len(column)} rows for {count} faces")
        if self.track_ids and len(self.track_ids) != count:
            raise ValueError(f"Detections.track_ids has {len(self.track_ids)} ids for {count} faces")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "keypoints", keypoints)
        object.__setattr__(self, "track_ids", tuple(self.track_ids))
        for name in ("cover", "cover_back"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _float_array(name, getattr(self, name), (None, 4)))

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
        rows = np.arange(len(self))[index]
        return Detections(
            boxes=self.boxes[index],
            scores=self.scores[index],
            keypoints=self.keypoints[index],
            extra={name: column[index] for name, column in self.extra.items()},
            track_ids=tuple(self.track_ids[i] for i in rows) if self.track_ids else (),
            cover=self.cover,  # regions of the frame, not of its faces: kept whole
            cover_back=self.cover_back,
        )

    def with_columns(
        self, track_ids: tuple[str | None, ...] | None = None, **extra: np.ndarray
    ) -> Detections:
        """The same faces with track ids and/or more ``extra`` columns."""
        return Detections(
            self.boxes,
            self.scores,
            self.keypoints,
            {**self.extra, **extra},
            self.track_ids if track_ids is None else track_ids,
            self.cover,
            self.cover_back,
        )

    def with_cover(self, regions: np.ndarray, back: np.ndarray | None = None) -> Detections:
        """The same faces with the regions a redacting sink hides (``back``: on earlier frames too)."""
        return replace(self, cover=regions, cover_back=back)

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-ready list: one dict per detection with box, score, keypoints, ``track_id`` and the
        extra columns; values with ``to_dict`` are converted, None values are left out."""
        records = [
            {"box": box, "score": score, "keypoints": points}
            for box, score, points in zip(
                rounding.pixels(self.boxes),
                rounding.scores(self.scores),
                rounding.pixels(self.keypoints),
                strict=True,
            )
        ]
        columns: dict[str, list[Any]] = {"track_id": list(self.track_ids)} if self.track_ids else {}
        for name, column in self.extra.items():
            columns[name] = list(column) if column.dtype == object else column.tolist()
        for name, values in columns.items():
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
    events: tuple[Event, ...] = ()  # the events this frame raised (the stages add them)
