"""POST /api/v1/redact over real HTTP: the image comes back in its format with the faces hidden,
upright and without metadata; every bad request is answered exactly as /api/v1/detect answers it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from face_clips import LEAK_MATCH, detail_match
from hostile_uploads import scan_bomb, truncated_jpeg
from test_detect_api import api_server, encoded, post
from test_redaction import FACE, GPS_IFD, sideways_photo_with_gps

# the two men's faces in face.jpg (tests/face_clips.py)
MEN = [np.array([250, 70, 345, 195]), np.array([115, 100, 225, 215])]


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str]]:
    """(redact, detect) urls of one server."""
    with api_server(max_body_mb=2) as detect:
        yield detect.replace("detect", "redact"), detect


@pytest.fixture(scope="module")
def face_jpeg(shared_dir: Path) -> bytes:
    return (shared_dir / "images" / "face.jpg").read_bytes()


def decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("mode", ["blur", "pixelate", "fill"])
def test_the_faces_come_back_hidden_in_the_same_format(
    urls: tuple[str, str], face_jpeg: bytes, mode: str
) -> None:
    redact, _ = urls
    reply = post(redact, face_jpeg, "image/jpeg", mode=mode)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/jpeg" and int(reply.headers["X-Faces-Covered"]) >= 2
    original, hidden = decoded(face_jpeg), decoded(reply.content)
    assert hidden.shape == original.shape
    for face in MEN:
        assert detail_match(original, hidden, face) < LEAK_MATCH, f"{mode}: face {face} visible"
    assert np.abs(hidden[300:, 300:].astype(int) - original[300:, 300:]).mean() < 4, "the rest is kept"


def test_png_and_forms(urls: tuple[str, str], face_jpeg: bytes) -> None:
    redact, _ = urls
    png = encoded(face_jpeg, ".png")
    reply = post(redact, png, "image/png", mode="fill")
    assert reply.headers["content-type"] == "image/png" and reply.content.startswith(b"\x89PNG")
    form = httpx.post(
        redact, files={"file": ("a.png", png, "image/png")}, params={"mode": "fill"}, timeout=30
    )
    assert form.status_code == 200 and form.content == reply.content, "the same answer either way"


def test_a_phone_photo_comes_back_upright_without_gps(urls: tuple[str, str], shared_dir: Path) -> None:
    from PIL import Image

    redact, _ = urls
    upright = cv2.imread(str(shared_dir / "images" / "grace_hopper.bmp"), cv2.IMREAD_COLOR)
    photo = sideways_photo_with_gps(upright)
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(GPS_IFD)
    reply = post(redact, photo, "image/jpeg", mode="fill")
    back = Image.open(io.BytesIO(reply.content))
    assert back.size == (upright.shape[1], upright.shape[0]) and not back.getexif()
    x1, y1, x2, y2 = FACE
    assert cv2.cvtColor(decoded(reply.content)[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).std() < 3


def test_bad_requests_are_answered_as_detect_answers_them(urls: tuple[str, str], face_jpeg: bytes) -> None:
    redact, detect = urls
    cases = {
        "not an image type": (b"hello", "text/plain", {}),
        "not an image": (b"GIF89a" + bytes(100), "image/jpeg", {}),
        "truncated": (face_jpeg[: len(face_jpeg) * 9 // 10], "image/jpeg", {}),
        "cut header": (face_jpeg[:2000], "image/jpeg", {}),
        "too big": (bytes(3 * 1024 * 1024), "image/png", {}),
        "form without boundary": (b"--x--", "multipart/form-data", {}),
        "bad min_score": (face_jpeg, "image/jpeg", {"min_score": 2}),
        "scan bomb": (scan_bomb(), "image/jpeg", {}),
    }
    for name, (body, content_type, params) in cases.items():
        theirs = post(detect, body, content_type, **params)
        ours = post(redact, body, content_type, **params)
        assert ours.status_code == theirs.status_code and 400 <= ours.status_code < 500, name
        if name != "bad min_score":  # the same words too (the parameter's range differs)
            assert ours.json() == theirs.json(), name
    low = post(redact, face_jpeg, "image/jpeg", min_score=0.01)
    assert low.status_code == 400 and "min_score" in low.json()["error"]
    mode = post(redact, face_jpeg, "image/jpeg", mode="erase")
    assert mode.status_code == 400 and "mode" in mode.json()["error"]


def test_damage_the_decoder_papered_over_is_said(urls: tuple[str, str], face_jpeg: bytes) -> None:
    """A truncated JPEG with an end marker appended: /detect lists a warning, /redact says it in a header."""
    redact, detect = urls
    damaged = truncated_jpeg(face_jpeg)
    warnings = post(detect, damaged, "image/jpeg").json()["warnings"]
    reply = post(redact, damaged, "image/jpeg")
    assert warnings and reply.status_code == 200
    assert reply.headers["X-Warnings"] == "; ".join(warnings)
