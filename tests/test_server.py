"""The HTTP server against a real pipeline on real video: metrics, probes, JSON API and live frames."""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import count_frames
from http_helpers import cli_server, get, serve, wait_for
from prometheus_client.parser import text_string_to_metric_families

from streamproc.config.settings import HttpSettings, Settings, SourceSettings
from streamproc.core.errors import OutputError
from streamproc.core.frames import FrameResult
from streamproc.pipeline.build import build_pipeline
from streamproc.server import StatusServer
from streamproc.sinks.base import Sink
from streamproc.sinks.live import LiveViewSink

pytestmark = pytest.mark.slow  # real serve processes


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by prometheus-client's own parser: {(sample name, labels): value}."""
    reply = get(url)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(reply.body.decode())
        for sample in family.samples
    }


def test_metrics_parse_and_count_every_frame(sample_video: Path) -> None:
    frames = count_frames(sample_video)[0]
    with serve([sample_video]) as served:
        report = served.wait_done()
        metrics = scrape(served.url("metrics"))
    source = (("source", "sample"),)
    assert report.frames_processed == frames
    assert metrics[("streamproc_frames_processed_total", source)] == frames
    assert metrics[("streamproc_frames_decoded_total", source)] == frames
    assert metrics[("streamproc_frames_dropped_total", source)] == 0
    model = (("model", "blazeface-short"),)
    assert metrics[("streamproc_inference_seconds_count", model)] == frames
    inf_bucket = (("le", "+Inf"), ("model", "blazeface-short"))
    assert metrics[("streamproc_inference_seconds_bucket", inf_bucket)] == frames
    assert 0 < metrics[("streamproc_inference_seconds_sum", model)] < frames  # under a second a frame
    assert metrics[("streamproc_capture_to_sink_seconds_count", source)] == frames
    assert metrics[("streamproc_source_state", (("source", "sample"), ("state", "stopped")))] == 1
    assert metrics[("streamproc_ready", ())] == 1
    assert metrics[("streamproc_sink_errors_total", (("sink", "live-view"),))] == 0
    assert ("process_cpu_seconds_total", ()) in metrics


class Gate(Sink):
    """A sink that holds the pipeline until the test opens it (lossless runs wait for sinks)."""

    name = "gate"

    def __init__(self) -> None:
        self.opened = threading.Event()

    def handle(self, result: FrameResult) -> None:
        self.opened.wait(30)


def test_readyz_flips_to_failing_when_a_source_fails(long_video: Path, tmp_path: Path) -> None:
    # long enough that its frames cannot all wait in the buffer and the closed gate's queue: the
    # source is still streaming (not already failed at the cut) when readiness is asked
    data = long_video.read_bytes()
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(data[: len(data) * 6 // 10])
    gate = Gate()
    with serve([truncated], extra_sinks=[gate], start=False) as served:
        before = get(served.url("readyz"))
        assert before.status == 503, "not ready before the source streams"
        served.thread.start()
        try:
            wait_for(lambda: get(served.url("readyz")).status == 200, what="ready while streaming")
            assert get(served.url("healthz")).status == 200
        finally:
            gate.opened.set()
        report = served.wait_done()
        after = get(served.url("readyz"))
        sources = get(served.url("api/sources")).json()["sources"]
        metrics = scrape(served.url("metrics"))
    assert not report.ok
    assert after.status == 503
    reasons = after.json()["reasons"]
    assert len(reasons) == 1 and "cut" in reasons[0] and "failed" in reasons[0] and "truncated" in reasons[0]
    assert sources[0]["state"] == "failed" and "truncated" in sources[0]["last_error"]
    assert metrics[("streamproc_ready", ())] == 0


def test_api_reports_sources_and_stats(sample_video: Path, tmp_path: Path) -> None:
    with serve([sample_video, tmp_path / "missing.mp4"]) as served:
        served.wait_done()
        sources = {s["id"]: s for s in get(served.url("api/sources")).json()["sources"]}
        stats = get(served.url("api/stats")).json()
        ready = get(served.url("readyz"))
        missing_page = get(served.url("nope"))
        unknown_live = get(served.url("live/nobody.jpg"))
    frames = count_frames(sample_video)[0]
    assert sources["sample"]["state"] == "stopped"
    assert sources["sample"]["frames_processed"] == frames
    assert sources["sample"]["faces"] == 2  # the sample shows two faces to the end
    assert sources["missing"]["state"] == "failed" and "does not exist" in sources["missing"]["last_error"]
    assert stats["sources"]["sample"]["frames_processed"] == frames
    assert stats["inference_ms"]["blazeface-short"]["count"] == frames
    assert stats["sinks"]["live-view"]["handled"] == frames
    assert ready.status == 503 and "missing" in ready.json()["reasons"][0]
    assert missing_page.status == 404 and unknown_live.status == 404


def decoded_frames(video: Path) -> list[np.ndarray]:
    with av.open(str(video)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def test_live_jpeg_is_the_latest_frame_and_costs_nothing_unwatched(sample_video: Path) -> None:
    with serve([sample_video]) as served:
        served.wait_done()
        assert served.live.frames_encoded == 0, "no viewer: nothing may be encoded"
        reply = get(served.url("live/sample.jpg"))
        again = get(served.url("live/sample.jpg"))
        encoded = served.live.frames_encoded
    assert reply.status == 200 and reply.headers["Content-Type"] == "image/jpeg"
    assert encoded == 1, "a second viewer of the same frame reuses its encoding"
    assert again.body == reply.body
    index = int(reply.headers["X-Frame-Index"])
    frames = decoded_frames(sample_video)
    assert index == len(frames) - 1
    picture = cv2.imdecode(np.frombuffer(reply.body, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == frames[index].shape
    close = np.abs(picture.astype(int) - frames[index].astype(int)).max(axis=2) <= 24
    assert close.mean() > 0.9, "the live frame does not match the source frame"
    assert close.mean() < 0.995, "the faces should be boxed: the picture differs where they are drawn"


def test_mjpeg_stream_sends_frames_and_counts_its_viewer(sample_video: Path) -> None:
    with serve([sample_video]) as served:
        served.wait_done()
        with socket.create_connection((served.server.settings.host, served.server.port), timeout=10) as conn:
            conn.sendall(b"GET /live/sample.mjpeg HTTP/1.0\r\n\r\n")
            data = b""
            while data.count(b"\xff\xd9") < 1:  # JPEG end-of-image marker
                chunk = conn.recv(65536)
                assert chunk, "stream closed before a frame arrived"
                data += chunk
            wait_for(lambda: served.live.viewers().get("sample") == 1, what="viewer counted")
            metrics = scrape(served.url("metrics"))
        wait_for(lambda: served.live.viewers().get("sample") == 0, what="viewer gone")
    assert b"multipart/x-mixed-replace" in data.split(b"\r\n\r\n")[0]
    start = data.index(b"\xff\xd8")
    picture = cv2.imdecode(
        np.frombuffer(data[start : data.index(b"\xff\xd9") + 2], np.uint8), cv2.IMREAD_COLOR
    )
    assert picture is not None and picture.shape[:2] == (360, 640)
    assert metrics[("streamproc_live_viewers", (("source", "sample"),))] == 1


def test_busy_port_is_a_one_line_error(sample_video: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(
            sources=[SourceSettings(url=str(sample_video))], http=HttpSettings(enabled=True, port=port)
        )
        live = LiveViewSink()
        with pytest.raises(OutputError, match=rf"cannot listen on 127\.0\.0\.1:{port}.*http\.port"):
            StatusServer(settings.http, build_pipeline(settings, extra_sinks=[live]), live)


def test_cli_http_switch_serves_while_running(long_video: Path) -> None:
    args = ["run", str(long_video), "--http", "127.0.0.1:0", "--no-progress"]
    with cli_server(*args) as (process, port):
        url = f"http://127.0.0.1:{port}/"
        assert get(url + "healthz").json() == {"status": "ok"}
        wait_for(lambda: get(url + "readyz").status == 200, what="ready")
        processed = ("streamproc_frames_processed_total", (("source", "long"),))
        # ready means streaming; the first processed frame may still be a moment away
        wait_for(lambda: scrape(url + "metrics").get(processed, 0) > 0, what="a processed frame")
        assert b"live/long.mjpeg" in get(url).body
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
