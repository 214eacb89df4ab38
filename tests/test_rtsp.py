"""RTSP sources against a real RTSP server (rtsp-server-perl fed by FFmpeg) on loopback ports."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from live_run import LIVE, LiveRun, assert_no_thread_leak, live_settings, wait_until
from rtsp_server import RtspServer

from streamproc.config.settings import Settings
from streamproc.core.frames import SourceState
from streamproc.core.pictures import AvPicture
from streamproc.inference.blazeface import BlazeFaceDetector

pytestmark = pytest.mark.slow  # a real RTSP server

FPS = 25  # the sample's frame rate
BACKOFF_BOUND = LIVE["reconnect"]["max"] * (1 + LIVE["reconnect"]["jitter"])  # longest single wait
CONNECT_ALLOWANCE = 4.0  # handshake, probing and waiting for the next keyframe (every 2 s)


def file_boxes(video: Path, detector: BlazeFaceDetector) -> list[np.ndarray]:
    """Face boxes of every frame of a file, detected the way the pipeline does it."""
    boxes = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            boxes.append(detector.detect(detector.prepare(AvPicture(frame))).boxes)
    return boxes


def same_faces(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, atol=1.0))


def test_stream_detections_match_the_file(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    rtsp_server.publish("cam", sample_video)
    expected = file_boxes(sample_video, blazeface)
    with LiveRun(live_settings(rtsp_server.url("cam")), blazeface) as run:
        wait_until(lambda: len(run.collector.of("s0")) >= 120, 30, "120 frames from the stream")
    seen = run.collector.of("s0")
    assert run.states("s0")[:2] == [SourceState.CONNECTING, SourceState.STREAMING]

    # The reader joins the loop anywhere: find the loop position that lines most frames up. The
    # media time (pts) keeps the frames' spacing even if a UDP packet was lost.
    first = seen[0].pts
    positions = [round((item.pts - first) * FPS) for item in seen]  # type: ignore[operator]
    total = len(expected)

    def matches(offset: int) -> int:
        return sum(
            same_faces(item.boxes, expected[(position + offset) % total])
            for item, position in zip(seen, positions, strict=True)
        )

    best = max(range(total), key=matches)
    assert matches(best) >= 0.9 * len(seen), f"{matches(best)} of {len(seen)} frames match the file"
    assert sum(len(item.boxes) > 0 for item in seen) >= 0.9 * len(seen)


def retry_delays(messages: list[str]) -> list[float]:
    return [float(found) for message in messages for found in re.findall(r"in ([\d.]+) s$", message)]


def test_server_killed_and_restarted(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    rtsp_server.publish("cam", sample_video)
    threads_before = set(threading.enumerate())
    with LiveRun(live_settings(rtsp_server.url("cam")), blazeface) as run:
        wait_until(lambda: len(run.collector.of("s0")) >= 25, 20, "frames before the outage")

        killed = time.monotonic()
        rtsp_server.kill()
        wait_until(lambda: run.first("s0", SourceState.RECONNECTING, killed), 10, "reconnecting")
        time.sleep(3.0)  # down for a while: several attempts, the delay grows to its cap
        rtsp_server.restart()
        back_up = time.monotonic()

        wait_until(lambda: run.first("s0", SourceState.STREAMING, back_up), 15, "streaming again")
        reconnected = run.first("s0", SourceState.STREAMING, back_up)
        assert reconnected is not None
        took = reconnected - back_up
        assert took <= BACKOFF_BOUND + CONNECT_ALLOWANCE, f"back after {took:.1f} s"
        wait_until(lambda: len(run.collector.of("s0", reconnected)) >= 25, 10, "detections to resume")
        stats = run.pipeline.stats_snapshot()["sources"]["s0"]
    assert stats["state"] == "streaming" and stats["failures"] >= 3, stats
    report = run.report
    assert report is not None and report.ok

    after = run.collector.of("s0", reconnected)
    assert sum(len(item.boxes) > 0 for item in after) >= 0.9 * len(after)
    delays = retry_delays(run.messages("s0", SourceState.RECONNECTING))
    assert len(delays) >= 3, delays
    assert all(delay <= BACKOFF_BOUND for delay in delays), delays
    assert delays[0] < delays[2], f"the delay should grow: {delays}"
    pts = [item.pts for item in run.collector.of("s0")]
    assert pts == sorted(pts), "media time never goes back across a reconnect"
    assert report.sources[0].state == "stopped"
    assert_no_thread_leak(threads_before, timeout=LIVE["connect_timeout"] * 2 + 2)


def closed_port_with_461() -> int:
    """A port nothing listens on whose number holds 461, as FFmpeg's 461 Unsupported Transport."""
    for port in (*range(4610, 4620), *range(14610, 14620), *range(34610, 34620)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("every port tried is taken")


@pytest.mark.parametrize("case", ["closed-port", "closed-port-461", "other-loopback-host", "wrong-path"])
def test_unreachable_camera_retries_with_backoff_then_fails(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector, case: str
) -> None:
    rtsp_server.publish("cam", sample_video)
    url, reason = {
        "closed-port": (f"rtsp://127.0.0.1:{rtsp_server.source_port + 7}/cam", "Connection refused"),
        "closed-port-461": (f"rtsp://127.0.0.1:{closed_port_with_461()}/cam", "Connection refused"),
        "other-loopback-host": (f"rtsp://127.0.0.2:{rtsp_server.client_port}/cam", "Connection refused"),
        "wrong-path": (rtsp_server.url("nope", credentials="admin:hunter2"), "404 Not Found"),
    }[case]
    live = {**LIVE, "reconnect": {**LIVE["reconnect"], "max_attempts": 3}}
    settings = Settings(sources=[{"url": url, "id": "cam"}], live=live)
    run = LiveRun(settings, blazeface)
    started = time.monotonic()
    with run:
        report = run.wait_ended(timeout=15)
    took = time.monotonic() - started

    assert run.states("cam") == [
        SourceState.CONNECTING,
        SourceState.RECONNECTING,
        SourceState.RECONNECTING,
        SourceState.FAILED,
    ]
    failed = run.messages("cam", SourceState.FAILED)[0]
    assert reason in failed and "gave up after 3 attempts" in failed
    assert "refuses RTP" not in failed, "a refused connection is not a refused transport"
    assert not report.ok and report.sources[0].error == failed
    delays = retry_delays(run.messages("cam", SourceState.RECONNECTING))
    assert len(delays) == 2 and delays[0] < delays[1]
    # the messages round each delay to 0.1 s
    assert took >= sum(delays) - 0.05 * len(delays), "the source waited between attempts"
    if case == "wrong-path":
        assert "check the stream path" in failed
        everything = " ".join(event.message for _, event in run.events) + repr(report)
        assert "hunter2" not in everything and "admin" not in everything


def test_tcp_transport_reaches_ffmpeg(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    """This server has no RTP-over-TCP: asking for TCP must fail clearly (and UDP works above)."""
    rtsp_server.publish("cam", sample_video)
    live = {**LIVE, "transport": "tcp", "reconnect": {**LIVE["reconnect"], "max_attempts": 1}}
    settings = Settings(sources=[{"url": rtsp_server.url("cam"), "id": "cam"}], live=live)
    with LiveRun(settings, blazeface) as run:
        run.wait_ended(timeout=15)
    failed = run.messages("cam", SourceState.FAILED)[0]
    assert "400 Bad Request" in failed and "transport" in failed
