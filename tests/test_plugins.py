"""Each kind of part is declared once, and a new one plugs in through public seams only: the
registries agree with the settings, an unregistered kind fails loudly, and a small sink, stage and
detector written here run a real pipeline on a real video (docs/architecture.md, "Adding a part")."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel

from streamproc.analysis.events import Event
from streamproc.config.settings import JsonlSinkSettings, Settings, SinkSettings, SourceSettings
from streamproc.core.errors import ConfigError
from streamproc.core.frames import Detections, Frame, FrameResult, ModelInput
from streamproc.core.pictures import Picture
from streamproc.inference import detectors
from streamproc.inference.detectors import DETECTOR_KINDS, DetectorKind, detector_kind, register_detector
from streamproc.media.pixels import BgrReader, PixelFormat, PixelPlan
from streamproc.pipeline.build import build_pipeline
from streamproc.sinks import kinds
from streamproc.sinks.base import ForwardingSink, Sink
from streamproc.sinks.kinds import SINK_KINDS, SinkKind, make_sink, register_sink, sink_kind
from streamproc.stages.base import Stage, StageOutput


def _union_members() -> dict[str, type]:
    union = typing.get_args(SinkSettings)[0]
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in typing.get_args(union)}


def test_the_sink_registry_and_the_settings_union_agree() -> None:
    members = _union_members()
    assert set(members) == {"jsonl", "video", "mqtt", "images"}
    assert {name: kind.settings for name, kind in SINK_KINDS.items()} == members


def test_an_unregistered_sink_type_fails_loudly() -> None:
    entry = JsonlSinkSettings(type="jsonl", path=Path("x.jsonl")).model_construct(type="carrier-pigeon")
    with pytest.raises(ConfigError, match="sink type 'carrier-pigeon' is not registered"):
        make_sink(entry, Settings())
    with pytest.raises(ValueError, match="registered twice"):
        register_sink(sink_kind("jsonl"))


def test_each_detector_model_has_one_kind() -> None:
    assert list(DETECTOR_KINDS) == ["blazeface", "tfjs-blazeface"]
    assert [detector_kind(model).name for model in ("short", "full", "human/blazeface.json")] == [
        "blazeface",
        "blazeface",
        "tfjs-blazeface",
    ]
    with pytest.raises(ConfigError, match="detector model 'medium' is of no registered kind"):
        detector_kind("medium")


def test_a_forwarding_sink_forwards_every_hook() -> None:
    hooks = {name for name in vars(Sink) if not name.startswith("_") and name != "name"}
    assert hooks and hooks <= set(vars(ForwardingSink)), sorted(hooks - set(vars(ForwardingSink)))


# --- a small plug-in of each kind ----------------------------------------------------------------


class CountSettings(BaseModel):
    type: Literal["count"]


class CountSink(Sink):
    """Counts frames and events, and reads each frame's pixels (so the plan keeps them)."""

    name = "count"

    def __init__(self, settings: CountSettings) -> None:
        self.frames, self.events, self.bright = 0, 0, 0.0
        self._bgr: BgrReader | None = None

    def pixel_needs(self) -> frozenset[PixelFormat]:
        return frozenset({PixelFormat.BGR})

    def open(self, pixels: PixelPlan) -> None:
        self._bgr = pixels.bgr(self)

    def handle(self, result: FrameResult) -> None:
        assert self._bgr is not None
        self.frames += 1
        self.bright = max(self.bright, float(self._bgr(result.frame).mean()))

    def handle_events(self, events: Sequence[Event]) -> None:
        self.events += len(events)


class FaceCounter(Stage):
    """A stage after the built-in ones: adds a column the sinks see."""

    name = "face-counter"

    def __init__(self) -> None:
        self.seen = 0

    def process(self, frame: Frame, detections: Detections) -> StageOutput:
        self.seen += len(detections)
        return detections.with_columns(counted=np.full(len(detections), self.seen)), ()


class CentreFace:
    """A detector that finds one face in the middle of every picture."""

    name = "centre-face"

    def prepare(self, picture: Picture) -> ModelInput:
        return ModelInput(self.name, np.zeros((1, 1), np.float32), picture.width, picture.height)

    def detect(self, model_input: ModelInput) -> Detections:
        w, h = model_input.width, model_input.height
        box = np.array([[w * 0.4, h * 0.4, w * 0.6, h * 0.6]], np.float32)
        return Detections(box, np.array([0.9], np.float32), np.full((1, 6, 2), [w / 2, h / 2], np.float32))


def test_a_sink_stage_and_detector_plug_in(
    sample_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def make_count(entry: Any, run: Settings, stats: Any) -> Sink:
        return CountSink(entry)

    # the registrations end with the test
    monkeypatch.setattr(kinds, "SINK_KINDS", dict(kinds.SINK_KINDS))
    monkeypatch.setattr(detectors, "DETECTOR_KINDS", dict(detectors.DETECTOR_KINDS))
    register_sink(SinkKind("count", CountSettings, make_count))
    register_detector(DetectorKind("centre-face", "centre-face.json".__eq__, lambda _: CentreFace()))
    sink = make_sink(CountSettings(type="count"), Settings())
    stage = FaceCounter()
    settings = Settings(
        sources=[SourceSettings(url=str(sample_video), id="cam")],
        sinks=[JsonlSinkSettings(type="jsonl", path=tmp_path / "e.jsonl")],
        detector={"model": "centre-face.json"},
    )
    pipeline = build_pipeline(settings, extra_stages=[stage], extra_sinks=[sink])
    assert pipeline.detector.name == "centre-face"
    assert [s.name for s in pipeline.stages] == ["tracks", "face-counter"]
    assert pipeline.pixels.formats == {PixelFormat.BGR}
    report = pipeline.run()
    assert isinstance(sink, CountSink)
    assert report.ok and sink.frames == report.frames_processed > 0 and sink.bright > 0
    assert stage.seen == sink.frames, "one centre face per frame"
    assert sink.events >= 2, "the tracks stage made a new and an end of the centre face"
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert any('"counted"' in line for line in lines), "the extra stage's column reached the JSON Lines"
