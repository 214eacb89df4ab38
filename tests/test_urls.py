"""Source urls: what kind of input, default ids, and credentials kept out of messages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from live_run import LIVE, LiveRun

from streamproc.capture.urls import (
    SourceKind,
    camera_device,
    default_source_id,
    display_url,
    parse_url,
    redact,
    source_kind,
)
from streamproc.config.settings import Settings
from streamproc.core.credentials import RedactingFilter
from streamproc.core.errors import InputError
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.server.health import readiness


@pytest.mark.parametrize(
    ("url", "kind", "source_id"),
    [
        ("rtsp://cam.local:554/stream1", SourceKind.RTSP, "stream1"),
        ("RTSP://admin:pw@camera.lan/Streaming/Channels/101", SourceKind.RTSP, "Streaming-Channels-101"),
        ("rtsps://user:pw@nvr/", SourceKind.RTSP, "nvr"),
        ("/dev/video0", SourceKind.CAMERA, "video0"),
        ("camera:2", SourceKind.CAMERA, "video2"),
        ("/dev/v4l/by-id/usb-cam-video-index0", SourceKind.CAMERA, "usb-cam-video-index0"),
        ("recordings/door.mp4", SourceKind.FILE, "door"),
        ("camera2.mp4", SourceKind.FILE, "camera2"),
    ],
)
def test_kind_and_default_id(url: str, kind: SourceKind, source_id: str) -> None:
    assert source_kind(url) is kind
    assert default_source_id(url) == source_id
    assert "pw" not in default_source_id(url)


def test_camera_index_names_its_device() -> None:
    assert camera_device("camera:3") == Path("/dev/video3")
    assert camera_device("/dev/video1") == Path("/dev/video1")


def test_redact_hides_users_and_passwords_anywhere_in_a_message() -> None:
    message = "open 'rtsp://admin:s3cret@cam:554/a' then rtsp://viewer@cam/b and rtsp://cam/c failed"
    assert redact(message) == "open 'rtsp://***@cam:554/a' then rtsp://***@cam/b and rtsp://cam/c failed"


@pytest.mark.parametrize(
    ("url", "user", "password", "host", "port", "rest"),
    [
        ("rtsp://viewer:Pa@ss#7@cam.lan/live", "viewer", "Pa@ss#7", "cam.lan", None, "/live"),
        ("rtsp://v:Pa@ss#7/x y'z@10.0.0.5:8554/a/b?c=1", "v", "Pa@ss#7/x y'z", "10.0.0.5", 8554, "/a/b?c=1"),
        ("rtsps://u:12/34@[fe80::1]:322/s", "u", "12/34", "[fe80::1]", 322, "/s"),
        ("rtsp://only-user@nvr/", "only-user", None, "nvr", None, "/"),
        ("rtsp://a%40b:p%2Fq@nvr/", "a@b", "p/q", "nvr", None, "/"),  # already percent-encoded
        ("rtsp://nvr:554/ch1", None, None, "nvr", 554, "/ch1"),
    ],
)
def test_logins_split_at_the_last_at_before_the_host(
    url: str, user: str | None, password: str | None, host: str, port: int | None, rest: str
) -> None:
    parsed = parse_url(url)
    assert (parsed.user, parsed.password, parsed.host, parsed.port) == (user, password, host, port)
    assert parsed.rest == rest
    assert parse_url(parsed.encoded) == parsed, "the encoded url means the same to FFmpeg"
    assert "@" not in parsed.encoded.split("//", 1)[1].rsplit("@", 1)[0], "nothing reserved left unescaped"
    if password:
        assert password not in parsed.safe and parsed.safe.startswith(f"{parsed.scheme}://***@{host}")
        assert default_source_id(url) == (rest.split("?")[0].strip("/").replace("/", "-") or host)


def test_an_unreadable_login_is_refused_without_repeating_the_url() -> None:
    url = "rtsp://viewer:se@cret@host:notaport/x"
    with pytest.raises(InputError) as error:
        parse_url(url)
    assert "percent-encode" in str(error.value) and "se@cret" not in str(error.value)
    assert display_url(url) == "rtsp://***"


def test_every_scheme_and_every_known_password_is_hidden() -> None:
    parse_url("rtsp://cam:w1th space'@10.0.0.9/x")  # a configured camera: its password is remembered
    message = "GET http://admin:hunter2@nvr/x failed; retry w1th space' later; rtsps://u:p@h/y"
    cleaned = redact(message)
    assert cleaned == "GET http://***@nvr/x failed; retry *** later; rtsps://***@h/y"
    assert display_url("http://admin:hunter2@nvr/x.mp4") == "http://***@nvr/x.mp4"
    assert display_url("recordings/door.mp4") == "recordings/door.mp4"


def test_errors_and_log_lines_never_carry_a_password(caplog: pytest.LogCaptureFixture) -> None:
    for shown in ("http://admin:hunter2@nvr/x.mp4", "http:/admin:hunter2@nvr/x.mp4"):  # the second: via Path
        error = InputError(f"input {shown} does not exist")
        assert "hunter2" not in str(error) and "admin" not in str(error), error
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "opening %s", ("rtsp://a:s3cr3t@h/x",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "opening rtsp://***@h/x"


def test_no_login_in_sources_stats_readiness_or_events(blazeface: BlazeFaceDetector) -> None:
    urls = ["rtsp://viewer:Pa@ss#7@127.0.0.1:9/cam", "http://admin:hunter2@127.0.0.1:9/v.mp4"]
    live = {**LIVE, "reconnect": {**LIVE["reconnect"], "max_attempts": 1}}
    run = LiveRun(Settings(sources=[{"url": url} for url in urls], live=live), blazeface)
    with run:
        report = run.wait_ended(timeout=15)
    sources = run.pipeline.sources_snapshot()
    assert set(sources) == {"cam", "v"}, "ids from the path, never from the login"
    shown = [json.dumps(sources), json.dumps(run.pipeline.stats_snapshot()), repr(report)]
    shown += [str(readiness(run.pipeline)), " ".join(event.message for _, event in run.events)]
    for secret in ("viewer", "Pa@ss", "ss#7", "admin", "hunter2"):
        assert secret not in " ".join(shown), secret
