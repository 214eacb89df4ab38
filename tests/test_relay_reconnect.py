"""Cameras behind relays come back (issue 21, item 10): a relay (rtsp-server-perl here, as mediamtx,
go2rtc and NVRs do) answers 404 Not Found while the camera behind it is away. A source that has
delivered a frame retries for the whole run, its state and reason visible; before the first frame
the give-up is spread over ``give_up_after`` seconds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import read_records
from live_run import LIVE, LiveRun, live_settings, wait_until
from rtsp_server import RtspServer

from streamproc.config.settings import Settings
from streamproc.core.frames import SourceState
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.server.health import readiness

pytestmark = pytest.mark.slow  # a real relay stopped and started


def _camera_away(relay: RtspServer) -> None:
    """The relay stays up, the camera behind it is gone: a fresh relay without its publisher."""
    relay.kill()
    relay.start()
    assert relay.describe("cam") == 404


@pytest.mark.slow
def test_a_camera_that_streamed_comes_back_after_its_relay_answered_404(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector, tmp_path: Path
) -> None:
    rtsp_server.publish("cam", sample_video)
    events = tmp_path / "e.jsonl"
    settings = live_settings(rtsp_server.url("cam"), sinks=[{"type": "jsonl", "path": str(events)}])
    settings.live.give_up_after = 0  # no grace at all: a camera that has streamed is never given up
    with LiveRun(settings, blazeface) as run:
        wait_until(lambda: len(run.collector.of("s0")) >= 10, 20, "frames before the outage")
        _camera_away(rtsp_server)
        away = time.monotonic()
        # far more 404s than misconfig_attempts (3): still retried
        wait_until(
            lambda: sum("404" in m for m in run.messages("s0", SourceState.RECONNECTING)) >= 5, 20, "404s"
        )
        ready, reasons = readiness(run.pipeline)
        assert not ready and any("reconnecting" in r and "404 Not Found" in r for r in reasons), reasons
        rtsp_server.publish("cam", sample_video)
        back = time.monotonic()
        wait_until(lambda: run.first("s0", SourceState.STREAMING, back), 15, "streaming again")
        wait_until(lambda: len(run.collector.of("s0", back)) >= 10, 15, "frames after the camera returned")
        assert SourceState.FAILED not in run.states("s0", away)
    report = run.report
    assert report is not None and report.ok, report.problems()
    status = read_records(events, "status")
    assert any(r["state"] == "reconnecting" and "404 Not Found" in r["message"] for r in status)
    assert [r["state"] for r in status].count("streaming") >= 2


def test_before_the_first_frame_a_404_is_given_up_only_after_give_up_after_seconds(
    rtsp_server: RtspServer, blazeface: BlazeFaceDetector
) -> None:
    live = {**LIVE, "give_up_after": 2.5, "reconnect": {**LIVE["reconnect"], "max": 0.3}}
    settings = Settings(sources=[{"url": rtsp_server.url("cam"), "id": "cam"}], live=live)
    started = time.monotonic()
    with LiveRun(settings, blazeface) as run:
        report = run.wait_ended(timeout=20)
    took = time.monotonic() - started
    failed = run.messages("cam", SourceState.FAILED)
    assert len(failed) == 1 and "404 Not Found" in failed[0] and "gave up after" in failed[0]
    assert took >= 2.5, f"gave up after {took:.1f} s"
    attempts = len(run.messages("cam", SourceState.RECONNECTING)) + 1
    assert attempts > 3, "more attempts than misconfig_attempts: the give-up waited"
    assert not report.ok


@pytest.mark.slow
def test_a_relay_that_is_up_before_its_camera_is_waited_for(
    rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    """The default give_up_after (30 s): a camera published 5 s after the run started is read."""
    live = {**LIVE, "give_up_after": 30.0}  # the default
    settings = Settings(sources=[{"url": rtsp_server.url("cam"), "id": "cam"}], live=live)
    with LiveRun(settings, blazeface) as run:
        wait_until(lambda: len(run.messages("cam", SourceState.RECONNECTING)) >= 4, 15, "404s")
        rtsp_server.publish("cam", sample_video)
        wait_until(lambda: len(run.collector.of("cam")) >= 10, 20, "frames once the camera is there")
    assert SourceState.FAILED not in run.states("cam")
