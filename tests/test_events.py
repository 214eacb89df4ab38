"""Tracks, events, snapshots and classification on real video (faces entering and leaving)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from fractions import Fraction
from html import escape
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import cv2
import jsonschema
import numpy as np
import pytest
from conftest import CliRunner, read_records, run_streamproc
from live_run import LiveRun, live_settings, wait_until
from mqtt_support import Broker, Recorder, mqtt_settings
from rtsp_server import RtspServer

from streamproc.analysis.snapshots import square_crop
from streamproc.config.settings import ClassifierSettings, JsonlSinkSettings, Settings, SourceSettings
from streamproc.core.events import SCHEMA_PATH, WorkerLostEnd
from streamproc.core.frames import Detections, Frame, FrameResult, SourceState, StreamInfo
from streamproc.core.geometry import box_iou
from streamproc.core.pictures import ArrayPicture
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.classifiers import open_classifier
from streamproc.inference.models import ModelRegistry
from streamproc.pipeline.build import build_pipeline
from streamproc.sinks.base import Sink, SinkRunner

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 25, 4.0
TRACK_TYPES = ("new", "update", "end")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class EnterExitRun:
    """One CLI run over the enter_exit sample with events, snapshots and classification (faces + frames)."""

    def __init__(self, root: Path, sample_maker: ModuleType, run_cli: CliRunner) -> None:
        self.video = sample_maker.make_sample(
            root / "enter_exit.mp4", WIDTH, HEIGHT, FPS, SECONDS, scenario="enter_exit"
        )
        self.truth = sample_maker.face_placements(WIDTH, HEIGHT, FPS, SECONDS, "enter_exit")
        self.jsonl, self.snapshots = root / "out.jsonl", root / "snapshots"
        config = root / "run.yaml"
        config.write_text(
            "snapshots: {full_frame: true}\nclassifier: {keyframes: {policy: every_n, every_n: 25}}\n"
        )
        self.result = run_cli(
            "run", self.video, "-c", config, "--events", self.jsonl, "--snapshots", self.snapshots,
            "--classify", "both", "--no-progress",
        )  # fmt: skip
        self.frames = read_records(self.jsonl)
        self.events = read_records(self.jsonl, *TRACK_TYPES, "scene")
        self.by_track: dict[str, list[dict]] = defaultdict(list)
        for event in self.events:
            if event["type"] != "scene":
                self.by_track[event["track_id"]].append(event)

    def truth_face(self, frame: int, box: Sequence[float]) -> str | None:
        """The ground-truth face (A or B) a detected box belongs to, if any."""
        for placement in self.truth[frame]:
            iou = box_iou(np.array([box], np.float32), np.array([placement.face_box], np.float32))[0, 0]
            if iou >= 0.5:
                return placement.face_id
        return None


@pytest.fixture(scope="module")
def enter_exit(
    tmp_path_factory: pytest.TempPathFactory, sample_maker: ModuleType, models_dir: Path
) -> EnterExitRun:
    return EnterExitRun(tmp_path_factory.mktemp("enter_exit"), sample_maker, run_streamproc)


def test_run_succeeds_and_writes_every_frame(enter_exit: EnterExitRun) -> None:
    assert enter_exit.result.returncode == 0, enter_exit.result.stderr
    assert [r["frame"] for r in enter_exit.frames] == list(range(round(FPS * SECONDS)))


def test_two_faces_give_two_tracks_with_one_new_and_one_end_each(enter_exit: EnterExitRun) -> None:
    assert len(enter_exit.by_track) == 2
    for track_id, events in enter_exit.by_track.items():
        types = [event["type"] for event in events]
        assert types.count("new") == 1 and types.count("end") == 1, (track_id, types)
        assert types[0] == "new" and types[-1] == "end"
        assert [event["seq"] for event in events] == list(range(len(events)))
        assert events[-1]["end_reason"] == "lost"  # both faces leave before the clip ends
        assert events[-1]["end"]["frame"] < events[-1]["frame"]
    ids = [event["event_id"] for event in enter_exit.events]
    assert len(ids) == len(set(ids))


def test_track_ids_follow_the_right_face_and_stay_stable(enter_exit: EnterExitRun) -> None:
    ids_of: dict[str, list[str | None]] = defaultdict(list)
    for record in enter_exit.frames:
        for face in record["faces"]:
            who = enter_exit.truth_face(record["frame"], face["box"])
            assert who is not None, f"frame {record['frame']}: a face where there is none"
            ids_of[who].append(face.get("track_id"))
    assert set(ids_of) == {"A", "B"}
    for who, ids in ids_of.items():
        confirmed = [track_id for track_id in ids if track_id is not None]
        assert len(set(confirmed)) == 1, f"face {who} changed track: {sorted(set(confirmed))}"
        first = ids.index(confirmed[0])
        assert None not in ids[first:], f"face {who} lost its id while visible"
        assert first <= 3  # confirmed after min_hits frames
    assert ids_of["A"][-1] != ids_of["B"][-1]


def test_events_are_valid_against_the_schema(
    enter_exit: EnterExitRun, validator: jsonschema.Draft202012Validator
) -> None:
    assert enter_exit.events
    for event in enter_exit.events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"{event['type']} {event['event_id']}: {errors[0].message}"


def test_a_worker_lost_end_is_the_end_of_the_last_published_state(
    enter_exit: EnterExitRun, validator: jsonschema.Draft202012Validator
) -> None:
    """What a distributed run's driver writes for a track whose worker died: one more ``end`` after
    the track's last ``new``/``update``, valid against the same schema."""
    last = next(event for event in enter_exit.events if event["type"] == "update")
    end = WorkerLostEnd(last)
    assert (end.type, end.source_id, end.track_id) == ("end", last["source"], last["track_id"])
    written = end.to_dict()
    assert not sorted(validator.iter_errors(written), key=str)
    assert (
        written["seq"] == last["seq"] + 1 and written["event_id"] == f"{last['track_id']}.{last['seq'] + 1}"
    )
    assert written["end_reason"] == "worker_lost" and written["end"]["frame"] == last["frame"]


def test_events_describe_the_track(enter_exit: EnterExitRun) -> None:
    for events in enter_exit.by_track.values():
        new, end = events[0], events[-1]
        assert new["start"]["frame"] <= new["frame"] == new["best"]["frame"]
        assert end["start"] == new["start"]
        assert end["duration_s"] == pytest.approx(end["end"]["pts"] - end["start"]["pts"], abs=1e-6)
        assert end["top_score"] >= max(event["best"]["score"] for event in events) - 1e-4
        faces = {enter_exit.truth_face(e["frame"], e["box"]) for e in events if e["type"] != "end"}
        assert len(faces) == 1 and None not in faces
        for update in events[1:-1]:
            assert update["changes"], "an update says what changed"


def test_snapshots_are_crops_of_the_tracked_face(enter_exit: EnterExitRun) -> None:
    detector = BlazeFaceDetector("short")
    for track_id, events in enter_exit.by_track.items():
        end = events[-1]
        snapshot = end["snapshot"]
        assert snapshot is not None
        crop = cv2.imread(snapshot["path"])
        assert crop is not None and crop.shape == (256, 256, 3), track_id
        found = detector.detect_image(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        assert len(found) == 1, f"{snapshot['path']}: {len(found)} faces in the snapshot"
        centre = (found.boxes[0, :2] + found.boxes[0, 2:]) / 2
        assert np.all(np.abs(centre - 128) < 40), "the face sits in the middle of its crop"
        best = end["best"]
        who = enter_exit.truth_face(best["frame"], best["box"])
        assert who == enter_exit.truth_face(events[0]["frame"], events[0]["box"])
        frame = cv2.imread(snapshot["frame_path"])
        assert frame is not None and frame.shape == (HEIGHT, WIDTH, 3)


def test_classifications_land_in_events_and_frame_records(enter_exit: EnterExitRun, models_dir: Path) -> None:
    frames = {record["frame"]: record for record in enter_exit.frames}
    classifier = open_classifier(ClassifierSettings(enabled=True), ModelRegistry.load(models_dir))
    for track_id, events in enter_exit.by_track.items():
        new = events[0]
        classification = new["classification"]
        assert classification["model"] == "mobilenet_v2" and len(classification["top_k"]) == 5
        assert classification["frame"] == new["frame"]
        face = next(f for f in frames[new["frame"]]["faces"] if f.get("track_id") == track_id)
        assert face["classification"] == classification
        # the same crop, made independently from the decoded frame, gets the same answer
        rgb = _decoded_frame(enter_exit.video, new["frame"])
        crop = square_crop(rgb, np.array(new["box"]), margin=0.25)
        expected = classifier.classify([crop])[0]
        assert classification["top_k"][0]["index"] == expected.top.index
        assert classification["top_k"][0]["score"] == pytest.approx(expected.top.score, abs=0.02)
    scenes = [event for event in enter_exit.events if event["type"] == "scene"]
    assert [event["frame"] for event in scenes] == [0, 25, 50, 75]
    for event in scenes:
        assert event["trigger"] == "every_n" and event["track_id"] is None
        assert frames[event["frame"]]["scene"] == event["classification"]


def test_report_shows_the_tracks_snapshots_and_classes(enter_exit: EnterExitRun, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = run_streamproc("report", enter_exit.jsonl, "-o", page)  # no --video: thumbnails are snapshots
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert html.count('<tr class="track"') == 2
    assert html.count("data:image/jpeg;base64,") == 2
    for track_id, events in enter_exit.by_track.items():
        assert track_id in html
        assert escape(events[-1]["classification"]["top_k"][0]["label"]) in html


def _decoded_frame(video: Path, index: int) -> np.ndarray:
    with av.open(str(video)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{video} has no frame {index}")


class RecordingSink(Sink):
    """Collects what a sink plugin receives."""

    name = "recording"

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.events: list[dict[str, Any]] = []

    def handle(self, result: FrameResult) -> None:
        self.frames.append(result.frame.index)

    def handle_events(self, events: Sequence[Any]) -> None:
        self.events += [event.to_dict() for event in events]


def _run_sample(sample_video: Path, out: Path, stop_at: int | None = None) -> RecordingSink:
    recorder = RecordingSink()
    pipeline = build_pipeline(
        Settings(
            sources=[SourceSettings(url=str(sample_video))], sinks=[JsonlSinkSettings(type="jsonl", path=out)]
        ),
        extra_sinks=[recorder],
    )

    def progress(result: FrameResult) -> None:
        if result.frame.index == stop_at:
            pipeline.stop()

    assert pipeline.run(progress).ok
    return recorder


def test_source_end_ends_every_track_and_sinks_get_the_jsonl_events(
    sample_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    recorder = _run_sample(sample_video, out)
    written = read_records(out, *TRACK_TYPES)
    assert recorder.events == written  # what an MQTT sink publishes is what the file holds
    ends = [event for event in written if event["type"] == "end"]
    assert len(ends) == len([event for event in written if event["type"] == "new"]) == 2
    assert {event["end_reason"] for event in ends} == {"source_ended"}
    assert all(event["end"]["frame"] == recorder.frames[-1] for event in ends)  # visible to the end


def test_stopping_ends_every_track_as_stopped(sample_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    recorder = _run_sample(sample_video, out, stop_at=30)
    assert len(recorder.frames) < 100
    news = [event for event in recorder.events if event["type"] == "new"]
    ends = [event for event in recorder.events if event["type"] == "end"]
    assert len(news) == len(ends) == 2
    assert {event["end_reason"] for event in ends} == {"stopped"}


class BlockedSink(Sink):
    """A sink stuck until released: its queue fills up."""

    name = "blocked"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.frames = 0
        self.events: list[str] = []

    def handle(self, result: FrameResult) -> None:
        self.release.wait(10)
        self.frames += 1

    def handle_events(self, events: Sequence[Any]) -> None:
        self.events += [event.event_id for event in events]


class _FakeEvent:
    """Stands in for a track event: the runner only queues and hands it over."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id


def test_live_runner_drops_frames_but_never_events() -> None:
    sink = BlockedSink()
    runner = SinkRunner(sink, queue_size=2, lossless=False)
    runner.start()
    info = StreamInfo("cam", "rtsp://cam", 64, 48, 25.0, Fraction(1, 25), live=True)
    frame = Frame(info, 0, 0.0, 0, 0.0, ArrayPicture(np.zeros((48, 64, 3), np.uint8)))
    for number in range(20):
        runner.submit(FrameResult(frame, Detections.empty(), events=(_FakeEvent(f"e{number}"),)))
    runner.submit_events([_FakeEvent("end")])
    sink.release.set()
    runner.close()
    assert runner.dropped > 0 and sink.frames < 20
    assert sink.events == [f"e{number}" for number in range(20)] + ["end"]


def test_camera_outage_ends_its_tracks(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    rtsp_server.publish("cam", sample_video)
    recorder = RecordingSink()
    run = LiveRun(live_settings(rtsp_server.url("cam")), blazeface, extra_sinks=[recorder])

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [event for event in list(recorder.events) if event["type"] == kind]

    with run:
        wait_until(lambda: len(of_type("new")) == 2, 20, "both faces tracked")
        rtsp_server.kill()
        wait_until(lambda: len(of_type("end")) == 2, 15, "the tracks to end during the outage")
        assert run.first("s0", SourceState.RECONNECTING) is not None
    assert {event["end_reason"] for event in of_type("end")} == {"lost"}
    assert sorted(e["track_id"] for e in of_type("end")) == sorted(e["track_id"] for e in of_type("new"))


def test_mqtt_publishes_exactly_the_events_the_jsonl_file_holds(
    broker: Broker, recorders: Callable[..., Recorder], sample_video: Path, tmp_path: Path
) -> None:
    recorder = recorders(broker.port, ("streamproc/events",))
    settings = mqtt_settings(sample_video, broker.port)
    out = tmp_path / "events.jsonl"
    settings.sinks.append(JsonlSinkSettings(type="jsonl", path=out))
    assert build_pipeline(settings).run().ok
    written = read_records(out, *TRACK_TYPES)
    ends = [event for event in written if event["type"] == "end"]
    assert [event["end_reason"] for event in ends] == ["source_ended"] * 2  # sent after the last frame
    wait_until(lambda: len(recorder.on("streamproc/events")) >= len(written), 10, "every event")
    assert [json.loads(message.payload) for message in recorder.on("streamproc/events")] == written
