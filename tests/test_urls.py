"""Source urls: what kind of input, default ids, and credentials kept out of messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.capture.urls import SourceKind, camera_device, default_source_id, redact, source_kind


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
