"""Scene stage: classifies whole frames, chosen by the keyframe policy (every N, codec key frames,
scene change), and raises a ``scene`` event for each."""

from __future__ import annotations

from dataclasses import dataclass

from streamproc.analysis.events import RunIds
from streamproc.analysis.scene_change import KeyframeTrigger
from streamproc.config.settings import KeyframeSettings
from streamproc.core.events import Event, Moment, SceneEvent
from streamproc.core.frames import Detections, Frame
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan, ScaledRgbReader
from streamproc.stages.base import Stage, StageOutput
from streamproc.stages.classify import ClassifierRunner


@dataclass
class _Pixels:
    bgr: BgrReader
    thumbnail: ScaledRgbReader


class SceneStage(Stage):
    """Whole-frame classification on the frames the keyframe policy picks, per source."""

    name = "scene"

    def __init__(self, settings: KeyframeSettings, classifier: ClassifierRunner, ids: RunIds) -> None:
        self.settings = settings
        self._classifier = classifier
        self._ids = ids
        self._triggers: dict[str, KeyframeTrigger] = {}
        self._pixels: _Pixels | None = None

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR, PixelFormat.RGB_SCALED})

    def open(self, pixels: PixelPlan) -> None:
        self._pixels = _Pixels(pixels.bgr(self), pixels.rgb_scaled(self))

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        assert self._pixels is not None, "open() first"
        trigger = self._triggers.setdefault(frame.source_id, KeyframeTrigger(self.settings))
        reason = trigger.check(frame, self._pixels.thumbnail)
        if reason is None:
            return detections, ()
        (result,) = self._classifier.classify([self._pixels.bgr(frame)], frame.index)
        at = Moment(frame.index, frame.pts, frame.wall_time)
        event: Event = SceneEvent(
            self._ids.scene_id(), frame.source_id, at, frame.width, frame.height, reason, result
        )
        return detections, (event,)
