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
from pydantic import BaseModel, ValidationError

from streamproc.capture.factory import SOURCE_TYPES, register_source, source_type
from streamproc.capture.urls import SourceKind
from streamproc.config.settings import (
    ClassifierSettings,
    DetectorSettings,
    JsonlSinkSettings,
    Settings,
    SinkSettings,
    SourceSettings,
)
from streamproc.core.errors import ConfigError, ModelError
from streamproc.core.events import Event
from streamproc.core.frames import Detections, Frame, FrameResult, ModelInput
from streamproc.core.pictures import Picture
from streamproc.inference import detectors, runtime
from streamproc.inference.detectors import DETECTOR_KINDS, DetectorKind, detector_kind, register_detector
from streamproc.inference.runtime import Runtime, TfliteModel, check_device, load_model, register_runtime
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


def test_every_kind_of_url_has_one_registered_source() -> None:
    assert set(SOURCE_TYPES) == set(SourceKind)
    urls = ("a.mp4", "-", "rtsp://cam/1", "camera:0", "shots/*.jpg")
    assert [url for url in urls if source_type(url).reads_file] == ["a.mp4", "-"]
    assert source_type("a.mp4").input_files("a.mp4") == (Path("a.mp4"),)
    assert source_type("-").input_files("-") == () == source_type("camera:0").input_files("camera:0")
    with pytest.raises(ValueError, match="registered twice"):
        register_source(source_type("a.mp4"))


def test_where_a_model_runs_is_a_setting_apart_from_what_it_computes() -> None:
    assert DetectorSettings().device == ClassifierSettings().device == "cpu"
    with pytest.raises(ValidationError, match="Input should be 'cpu'"):
        DetectorSettings(device="gpu")
    with pytest.raises(ModelError, match="no runtime for device 'gpu'"):
        check_device("gpu")


def test_a_runtime_for_another_device_plugs_in(shared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = shared_dir / "models" / "mobilenet_v1_0.25_128_quant.tflite"
    assert list(runtime.RUNTIMES) == ["litert", "tensorflow"]
    assert isinstance(load_model(model), TfliteModel)
    loaded: list[Path] = []

    def on_the_gpu(path: Path, threads: int) -> TfliteModel:
        loaded.append(path)
        return TfliteModel(path, threads)  # a stand-in: no GPU here

    monkeypatch.setattr(runtime, "RUNTIMES", dict(runtime.RUNTIMES))  # the registration ends with the test
    register_runtime(Runtime("gpu", lambda path: path.suffix == ".tflite", on_the_gpu, frozenset({"gpu"})))
    check_device("gpu")
    assert load_model(model, 1, "gpu").input_shape == (1, 128, 128, 3) and loaded == [model]
    assert isinstance(load_model(model), TfliteModel) and loaded == [model], "the CPU still runs on LiteRT"


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
    assert [s.name for s in pipeline.stages] == ["tracks", "track-events", "face-counter"]
    assert pipeline.pixels.formats == {PixelFormat.BGR}
    report = pipeline.run()
    assert isinstance(sink, CountSink)
    assert report.ok and sink.frames == report.frames_processed > 0 and sink.bright > 0
    assert stage.seen == sink.frames, "one centre face per frame"
    assert sink.events >= 2, "the tracks stage made a new and an end of the centre face"
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    assert any('"counted"' in line for line in lines), "the extra stage's column reached the JSON Lines"
