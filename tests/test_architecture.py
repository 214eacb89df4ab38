"""The seams of the core: the builder, the detector protocol, the pixel plan and the Detections record."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import read_records

from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings, VideoSinkSettings
from streamproc.core.frames import Detections, FrameResult, ModelInput
from streamproc.core.pictures import ArrayPicture, AvPicture
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.detector import detect_image
from streamproc.media.pixels import PixelFormat, PixelPlan
from streamproc.pipeline.build import build_pipeline
from streamproc.sinks.base import Sink


def _first_frames(video: Path, count: int) -> list[av.VideoFrame]:
    with av.open(str(video)) as container:
        return [frame for _, frame in zip(range(count), container.decode(video=0), strict=False)]


class Counting(Sink):
    name = "counting"

    def __init__(self) -> None:
        self.frames = 0

    def handle(self, result: FrameResult) -> None:
        self.frames += 1


def test_builder_makes_the_parts_the_settings_ask_for(sample_video: Path, tmp_path: Path) -> None:
    settings = Settings(
        sources=[SourceSettings(url=str(sample_video))],
        sinks=[
            JsonlSinkSettings(type="jsonl", path=tmp_path / "e.jsonl"),
            VideoSinkSettings(type="video", path=tmp_path / "a.mp4"),
        ],
        snapshots={"enabled": True, "dir": tmp_path / "snaps"},
    )
    extra = Counting()
    pipeline = build_pipeline(settings, extra_sinks=[extra])
    assert pipeline.detector.name == "blazeface-short"
    assert [stage.name for stage in pipeline.stages] == ["tracks", "best-views", "track-events"]
    names = [sink.name for sink in pipeline.sinks]
    assert names[:2] == [f"jsonl:{tmp_path / 'e.jsonl'}", f"video:{tmp_path / 'a.mp4'}"]
    assert "counting" in names and any(name.startswith("snapshots:") for name in names)
    # the plan has what the video sink encodes and what the best-view stage crops for snapshots
    assert pipeline.pixels.needs["best-views"] == {PixelFormat.BGR}
    assert pipeline.pixels.formats == {PixelFormat.BGR, PixelFormat.YUV420P}
    report = pipeline.run()
    assert report.ok and extra.frames == report.frames_processed > 0
    assert list((tmp_path / "snaps").rglob("*.jpg")), "the snapshot sink wrote the best views"


def test_a_run_without_pixel_readers_releases_pictures(sample_video: Path, tmp_path: Path) -> None:
    settings = Settings(
        sources=[SourceSettings(url=str(sample_video))],
        sinks=[JsonlSinkSettings(type="jsonl", path=tmp_path / "e.jsonl")],
    )
    pipeline = build_pipeline(settings)
    assert not pipeline.pixels.keeps_pictures and pipeline.pixels.formats == frozenset()
    assert pipeline.run().ok
    assert read_records(tmp_path / "e.jsonl", "frame")


def test_a_custom_detector_goes_through_the_protocol(sample_video: Path, tmp_path: Path) -> None:
    """Any object with name/prepare/detect runs the pipeline; prepare runs on capture threads."""
    inner = BlazeFaceDetector("short")
    prepared_on: set[str] = set()

    class Recording:
        name = inner.name

        def prepare(self, picture: AvPicture) -> ModelInput:
            prepared_on.add(threading.current_thread().name)
            return inner.prepare(picture)

        def detect(self, model_input: ModelInput) -> Detections:
            return inner.detect(model_input)

    settings = Settings(
        sources=[SourceSettings(url=str(sample_video), id="cam")],
        sinks=[JsonlSinkSettings(type="jsonl", path=tmp_path / "e.jsonl")],
    )
    assert build_pipeline(settings, detector=Recording()).run().ok
    assert prepared_on == {"capture-cam"}


def test_photos_and_video_frames_share_one_preprocessing(sample_video: Path) -> None:
    """The same pixels as a decoded frame or as an array give the same input and the same faces."""
    detector = BlazeFaceDetector("short")
    for frame in _first_frames(sample_video, 3):
        from_video = detector.prepare(AvPicture(frame))
        rgb = frame.to_ndarray(format="rgb24")
        from_array = detector.prepare(ArrayPicture.from_rgb(rgb))
        assert (from_video.width, from_video.height) == (frame.width, frame.height)
        assert not from_video.tensor.flags.writeable, "model inputs are shared read-only"
        video_faces, array_faces = detector.detect(from_video), detect_image(detector, rgb)
        assert len(video_faces) == len(array_faces) == len(detector.detect(from_array)) >= 1
        np.testing.assert_allclose(video_faces.boxes, array_faces.boxes, atol=3.0)


def test_prepare_is_thread_safe(sample_video: Path) -> None:
    detector = BlazeFaceDetector("short")
    pictures = [AvPicture(frame) for frame in _first_frames(sample_video, 8)]
    expected = [detector.prepare(picture).tensor for picture in pictures]
    results: dict[int, list[np.ndarray]] = {}

    def work(worker: int) -> None:
        results[worker] = [detector.prepare(picture).tensor for picture in pictures]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tensors in results.values():
        assert all(np.array_equal(a, b) for a, b in zip(tensors, expected, strict=True))


def test_a_detector_refuses_another_detectors_input() -> None:
    short, full = BlazeFaceDetector("short"), BlazeFaceDetector("full")
    model_input = short.prepare(ArrayPicture(np.zeros((90, 160, 3), np.uint8)))
    with pytest.raises(ValueError, match="blazeface-full cannot take an input prepared by blazeface-short"):
        full.detect(model_input)


def test_detections_validate_their_arrays() -> None:
    boxes = np.zeros((2, 4), np.float64)
    good = Detections(boxes, np.array([0.9, 0.8]), np.zeros((2, 6, 2)), track_ids=("a", None))
    assert good.boxes.dtype == np.float32 and good.scores.dtype == np.float32
    assert good[1].track_ids == (None,) and good[np.array([True, False])].track_ids == ("a",)
    with pytest.raises(ValueError, match=r"boxes must have shape \(2, 4\)"):
        Detections(np.zeros((2, 5)), np.zeros(2), np.zeros((2, 6, 2)))
    with pytest.raises(ValueError, match=r"keypoints must have shape \(2, n, 2\)"):
        Detections(boxes, np.zeros(2), np.zeros((3, 6, 2)))
    with pytest.raises(ValueError, match="track_ids has 1 ids for 2 faces"):
        Detections(boxes, np.zeros(2), np.zeros((2, 6, 2)), track_ids=("a",))
    with pytest.raises(ValueError, match=r"extra\['age'\] has 3 rows for 2 faces"):
        Detections(boxes, np.zeros(2), np.zeros((2, 6, 2)), {"age": np.zeros(3)})
    with pytest.raises(ValueError, match="scores must be numeric"):
        Detections(boxes, np.array(["a", "b"]), np.zeros((2, 6, 2)))
    records = good.to_records()
    assert records[0]["track_id"] == "a" and "track_id" not in records[1]


def test_pixel_plan_names_the_consumer_and_the_format() -> None:
    class Drawer(Sink):
        name = "drawer"

        def handle(self, result: FrameResult) -> None:
            pass

    plan = PixelPlan.for_consumers([Drawer()])
    assert not plan.keeps_pictures
    with pytest.raises(Exception, match=r"drawer reads yuv420p pixels.*PixelFormat\.YUV420P"):
        plan.yuv420p(Drawer())
