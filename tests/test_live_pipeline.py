"""Several live sources in one process, and a consumer slower than the cameras."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from live_run import LiveRun, live_settings, wait_until
from rtsp_server import RtspServer

from streamproc.capture.buffer import BufferPolicy
from streamproc.core.frames import Detections, ModelInput, SourceState
from streamproc.core.pictures import Picture
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.detector import Detector

pytestmark = pytest.mark.slow  # live sources for a duration


def test_two_streams_and_a_file_in_one_process(
    make_rtsp_server: Callable[[], RtspServer], sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    camera_a, camera_b = make_rtsp_server(), make_rtsp_server()
    camera_a.publish("door", sample_video)
    camera_b.publish("yard", sample_video)
    settings = live_settings(camera_a.url("door"), camera_b.url("yard"), str(sample_video))
    with LiveRun(settings, blazeface) as run:
        for source_id in ("s0", "s1", "s2"):
            wait_until(lambda s=source_id: len(run.collector.of(s)) >= 25, 20, f"results from {source_id}")

        killed = time.monotonic()
        camera_b.kill()
        wait_until(lambda: run.first("s1", SourceState.RECONNECTING, killed), 10, "s1 reconnecting")
        window_start = time.monotonic()
        time.sleep(2.0)
        undisturbed = run.collector.of("s0", window_start)
    report = run.report
    assert report is not None

    # the surviving camera kept its frame rate (25 fps) while the other one was down
    span = undisturbed[-1].at - window_start
    assert len(undisturbed) >= 0.7 * 25 * span, f"{len(undisturbed)} frames in {span:.1f} s"
    assert sum(len(item.boxes) > 0 for item in undisturbed) >= 0.9 * len(undisturbed)
    assert SourceState.RECONNECTING not in run.states("s0")
    by_id = {source.source_id: source for source in report.sources}
    assert by_id["s2"].frames_processed == 100 and by_id["s2"].state == "stopped"
    assert by_id["s1"].state == "stopped" and by_id["s1"].error is None  # still retrying when stopped
    assert report.ok


class SlowDetector:
    """A detector (the protocol, not a subclass) that takes an extra 100 ms per frame: 10 fps
    against a 25 fps camera."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.name = inner.name

    def prepare(self, picture: Picture) -> ModelInput:
        return self.inner.prepare(picture)

    def detect(self, model_input: ModelInput) -> Detections:
        time.sleep(0.1)
        return self.inner.detect(model_input)


def test_slow_consumer_drops_oldest_and_keeps_latency_low(
    rtsp_server: RtspServer, sample_video: Path
) -> None:
    rtsp_server.publish("cam", sample_video)
    capacity = 4
    settings = live_settings(rtsp_server.url("cam"), s0={"buffer_size": capacity})
    run = LiveRun(settings, SlowDetector(BlazeFaceDetector("short")))
    buffer = run.pipeline.buffer("s0")
    assert buffer.policy is BufferPolicy.DROP_OLDEST
    high_water = 0
    watching = threading.Event()

    def watch() -> None:
        nonlocal high_water
        while not watching.is_set():
            high_water = max(high_water, len(buffer))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with run:
            wait_until(lambda: len(run.collector.of("s0")) >= 40, 30, "40 processed frames")
            stats = run.pipeline.stats_snapshot()["sources"]["s0"]
    finally:
        watching.set()
        watcher.join()

    assert high_water <= capacity, "the buffer never held more than its capacity"
    assert stats["frames_dropped"] > 0.3 * stats["frames_decoded"], stats
    unaccounted = stats["frames_decoded"] - stats["frames_processed"] - stats["frames_dropped"]
    assert 0 <= unaccounted <= capacity + 1, stats  # the rest are waiting in the buffer or in flight
    # processed frames are fresh: at most a full buffer behind the camera, not a growing backlog
    latency = stats["latency_ms"]
    assert latency["p99"] < 1000, latency
    report = run.report
    assert report is not None and report.sources[0].dropped >= stats["frames_dropped"]
