"""POST /api/v1/detect over real HTTP (httpx against a served port): every content type, EXIF
orientation, classification, each bad request, a full queue and a decompression bomb."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from http_helpers import cli_server, wait_for
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from streamproc.config.settings import DetectApiSettings, HttpSettings, Settings
from streamproc.server import StatusServer
from streamproc.server.detect_pool import open_detect_pool
from streamproc.server.view import NoSources

pytestmark = pytest.mark.slow  # real serve processes

MODEL = "mobilenet_v1"


@contextmanager
def api_server(**api: Any) -> Iterator[str]:
    """A server with only the detection API (no sources) on a free loopback port; yields its url."""
    http = HttpSettings(enabled=True, port=0, api=DetectApiSettings(models=[MODEL], **api))
    settings = Settings(http=http)
    pool = open_detect_pool(settings)
    try:
        with StatusServer(http, NoSources(), None, pool, require_sources=False) as server:
            yield server.url + "api/v1/detect"
    finally:
        pool.close()


@pytest.fixture(scope="module")
def detect_url() -> Iterator[str]:
    with api_server(max_body_mb=2) as url:
        yield url


@pytest.fixture(scope="module")
def face_jpeg(shared_dir: Path) -> bytes:
    return (shared_dir / "images" / "face.jpg").read_bytes()


def encoded(jpeg: bytes, ext: str, *params: int) -> bytes:
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    ok, data = cv2.imencode(ext, picture, list(params))
    assert ok
    return data.tobytes()


def post(url: str, body: bytes, content_type: str, **params: Any) -> httpx.Response:
    return httpx.post(url, content=body, headers={"Content-Type": content_type}, params=params, timeout=30)


def boxes(answer: dict) -> np.ndarray:
    return np.array(sorted(face["box"] for face in answer["faces"]))


def test_every_content_type_finds_the_same_faces(detect_url: str, face_jpeg: bytes) -> None:
    jpeg = post(detect_url, face_jpeg, "image/jpeg")
    assert jpeg.status_code == 200, jpeg.text
    reference = jpeg.json()
    assert (reference["width"], reference["height"], reference["format"]) == (512, 355, "jpeg")
    assert len(reference["faces"]) >= 2
    assert all(len(face["keypoints"]) == 6 and 0.5 <= face["score"] <= 1 for face in reference["faces"])
    lossless = {"image/png": encoded(face_jpeg, ".png"), "image/bmp": encoded(face_jpeg, ".bmp")}
    for content_type, body in lossless.items():
        answer = post(detect_url, body, content_type).json()
        assert answer["format"] == content_type.split("/")[1]
        assert np.array_equal(boxes(answer), boxes(reference)), content_type  # the same pixels
    webp = post(detect_url, encoded(face_jpeg, ".webp", cv2.IMWRITE_WEBP_QUALITY, 90), "image/webp").json()
    assert webp["format"] == "webp"
    assert np.abs(boxes(webp) - boxes(reference)).max() < 4  # lossy: nearly the same
    form = httpx.post(detect_url, files={"file": ("../../etc/passwd", face_jpeg, "image/jpeg")}, timeout=30)
    assert form.status_code == 200 and np.array_equal(boxes(form.json()), boxes(reference))


def test_curl_without_a_content_type_is_understood(detect_url: str, shared_dir: Path) -> None:
    """`curl --data-binary @photo.jpg` labels the body as a urlencoded form; the bytes are a JPEG."""
    photo = shared_dir / "images" / "face.jpg"
    reply = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--data-binary", f"@{photo}", detect_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reply.returncode == 0, reply.stdout + reply.stderr
    answer = json.loads(reply.stdout)
    reference = post(detect_url, photo.read_bytes(), "image/jpeg").json()
    assert answer["format"] == "jpeg" and np.array_equal(boxes(answer), boxes(reference))


def test_exif_orientation_is_applied(detect_url: str, face_jpeg: bytes) -> None:
    """A camera's portrait shot: pixels stored sideways with orientation 6 (rotate 90 clockwise)."""
    upright = Image.open(io.BytesIO(face_jpeg))
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise, as a sensor stores it
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=95, exif=exif)
    answer = post(detect_url, buffer.getvalue(), "image/jpeg").json()
    reference = post(detect_url, face_jpeg, "image/jpeg").json()
    assert (answer["width"], answer["height"]) == (512, 355), "the upright size"
    assert len(answer["faces"]) == len(reference["faces"])
    assert np.abs(boxes(answer) - boxes(reference)).max() < 6, "faces where they are in the upright photo"


def test_classification_of_faces_and_image(detect_url: str, face_jpeg: bytes) -> None:
    both = post(detect_url, face_jpeg, "image/jpeg", classify="both", top_k=3, model=MODEL).json()
    for face in both["faces"]:
        labels = face["classification"]["top_k"]
        assert face["classification"]["model"] == MODEL and len(labels) == 3
        assert labels[0]["score"] >= labels[1]["score"] >= labels[2]["score"]
    assert len(both["image_classification"]["top_k"]) == 3
    faces = post(detect_url, face_jpeg, "image/jpeg", classify="faces").json()
    assert "image_classification" not in faces and all("classification" in f for f in faces["faces"])
    image = post(detect_url, face_jpeg, "image/jpeg", classify="image", top_k=1).json()
    assert "classification" not in image["faces"][0]
    assert image["image_classification"] == {
        **both["image_classification"],
        "top_k": both["image_classification"]["top_k"][:1],
    }
    strict = post(detect_url, face_jpeg, "image/jpeg", min_score=0.95).json()
    assert 0 < len(strict["faces"]) < len(faces["faces"])
    assert all(face["score"] >= 0.95 for face in strict["faces"])


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height and holds no pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def test_bad_requests_get_clear_4xx(detect_url: str, face_jpeg: bytes) -> None:
    cases = {
        "not an image type": (post(detect_url, b"hello", "text/plain"), 415, "content type"),
        "not an image": (post(detect_url, b"GIF89a" + bytes(100), "image/jpeg"), 415, "not a JPEG"),
        "truncated": (
            post(detect_url, face_jpeg[: len(face_jpeg) * 9 // 10], "image/jpeg"),
            400,
            "truncated",
        ),
        "cut header": (post(detect_url, face_jpeg[:2000], "image/jpeg"), 400, "header"),
        "too big": (post(detect_url, bytes(3 * 1024 * 1024), "image/png"), 413, "limit"),
        "unknown model": (post(detect_url, face_jpeg, "image/jpeg", classify="faces", model="x"), 400, "x"),
        "bad classify": (post(detect_url, face_jpeg, "image/jpeg", classify="all"), 400, "classify"),
        "bad top_k": (post(detect_url, face_jpeg, "image/jpeg", top_k=0), 400, "top_k"),
        "low min_score": (post(detect_url, face_jpeg, "image/jpeg", min_score=0.1), 400, "min_score"),
        "form without file": (httpx.post(detect_url, files={"photo": ("a.jpg", face_jpeg)}), 400, "'file'"),
        "form without boundary": (post(detect_url, b"--x--", "multipart/form-data"), 400, "boundary"),
    }
    for name, (reply, status, words) in cases.items():
        assert reply.status_code == status, f"{name}: {reply.status_code} {reply.text}"
        assert words in reply.json()["error"], f"{name}: {reply.text}"


def test_a_60000_by_60000_png_is_refused_before_decoding(detect_url: str) -> None:
    bomb = png_header(60_000, 60_000)  # 3.6 gigapixels: 10.8 GB decoded
    started = time.monotonic()
    reply = post(detect_url, bomb, "image/png")
    assert reply.status_code == 413 and "60000x60000" in reply.json()["error"]
    assert time.monotonic() - started < 2, "refused from the header, not after decoding"


def test_a_full_queue_answers_503_with_retry_after(face_jpeg: bytes) -> None:
    big = cv2.resize(cv2.imdecode(np.frombuffer(face_jpeg, np.uint8), cv2.IMREAD_COLOR), (4096, 2840))
    body = cv2.imencode(".jpg", big)[1].tobytes()  # some 100 ms of decoding and cropping each
    with api_server(workers=1, queue_size=2, batch=1) as url:
        with ThreadPoolExecutor(16) as clients:
            replies = list(clients.map(lambda _: post(url, body, "image/jpeg", classify="both"), range(16)))
        after = post(url, face_jpeg, "image/jpeg")
        metrics = httpx.get(url.replace("api/v1/detect", "metrics")).text
    answers = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "streamproc_api_requests_total"
    }
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses.count(200) >= 3 and statuses.count(503) >= 1, statuses
    assert set(statuses) == {200, 503}
    refused = next(reply for reply in replies if reply.status_code == 503)
    assert refused.headers["Retry-After"] == "1" and "queue" in refused.json()["error"]
    assert after.status_code == 200, "the server recovers once the queue drains"
    assert answers == {"200": statuses.count(200) + 1, "503": statuses.count(503)}, answers


def test_serve_runs_sources_and_the_api_together(sample_video: Path, face_jpeg: bytes) -> None:
    args = ("serve", str(sample_video), "--http", "127.0.0.1:0", "--api-model", MODEL)
    with cli_server(*args) as (process, port):
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(f"{base}/api/sources").json()["sources"][0]["state"] == "stopped",
            what="the file to end",
        )
        time.sleep(0.5)  # serve keeps serving after its files end
        answer = httpx.post(f"{base}/api/v1/detect", content=face_jpeg, params={"classify": "faces"})
        assert answer.status_code == 200 and answer.json()["faces"][0]["classification"]["model"] == MODEL
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert httpx.get(f"{base}/live/sample.jpg").headers["content-type"] == "image/jpeg"
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "sample: 100 frames processed" in log


WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | getattr(os, "O_TMPFILE", 0)
OPENED: list[tuple] = []  # files opened anywhere in this process while WATCHING is set
WATCHING = threading.Event()


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and WATCHING.is_set():
        OPENED.append(args)


sys.addaudithook(_record_opens)  # hooks cannot be removed: installed once, on import, gated by WATCHING


def test_uploads_never_touch_the_filesystem(detect_url: str, shared_dir: Path) -> None:
    """A 1.4 MB multipart upload with a hostile file name: Starlette's own form parser would spool
    it to a temporary file; here no file is opened for writing while it is handled (an audit hook
    sees every open of the process, the server's threads included)."""
    photo = (shared_dir / "images" / "kite_and_cold.jpg").read_bytes()
    OPENED.clear()
    with httpx.Client() as client:
        WATCHING.set()
        try:
            reply = client.post(detect_url, files={"file": ("../../etc/shadow", photo, "image/jpeg")})
        finally:
            WATCHING.clear()
    assert reply.status_code == 200 and reply.json()["width"] == 1352
    writes = [args for args in OPENED if _writes(args)]
    assert not writes, writes


def _writes(args: tuple) -> bool:
    _path, mode, flags = args
    return bool(set(str(mode or "")) & set("wax+")) or bool((flags or 0) & WRITE_FLAGS)


def test_a_tfjs_model_classifies_faces_over_http(
    shared_dir: Path, repo_dir: Path, tmp_path: Path, face_jpeg: bytes
) -> None:
    """Human's emotion model (a TF.js graph model.json, with its sidecar) as the API's classifier."""
    human = shared_dir / "models" / "tfjs" / "human-3.3.6"
    for source in (
        human / "emotion.json",
        human / "emotion.bin",
        *(repo_dir / "models" / "tfjs").glob("emotion.*"),
    ):
        shutil.copy(source, tmp_path / source.name)
    labels = (repo_dir / "models" / "tfjs" / "emotion.txt").read_text().split()
    http = HttpSettings(enabled=True, port=0, api=DetectApiSettings(models=[str(tmp_path / "emotion.json")]))
    pool = open_detect_pool(Settings(http=http))
    try:
        with StatusServer(http, NoSources(), None, pool, require_sources=False) as server:
            offered = httpx.get(server.url + "api/v1/models").json()["models"]
            reply = post(
                server.url + "api/v1/detect", face_jpeg, "image/jpeg", classify="faces", model="emotion"
            )
    finally:
        pool.close()
    assert offered == ["emotion"], "names, not paths"
    faces = reply.json()["faces"]
    assert len(faces) >= 2
    for face in faces:
        top = face["classification"]["top_k"]
        assert face["classification"]["model"] == "emotion" and len(top) == 5
        assert {label["label"] for label in top} <= set(labels)
        assert abs(sum(label["score"] for label in top) - 1) < 0.2, "softmax: five of seven carry most"


def test_every_api_model_is_offered_also_the_classifier_sections_default() -> None:
    """`serve --api-model mobilenet_v1 --api-model mobilenet_v2` with classification off: mobilenet_v2
    is also the classifier section's default model, which must not hide it from the API."""
    api = DetectApiSettings(models=[MODEL, "mobilenet_v2", MODEL], workers=1)
    pool = open_detect_pool(Settings(http=HttpSettings(enabled=True, port=0, api=api)))
    try:
        assert pool.models == [MODEL, "mobilenet_v2"]
        assert pool.workers[0].classifiers[""].classifier.name == MODEL, "a request naming none: the first"
    finally:
        pool.close()


def test_concurrent_requests_share_the_classifier_call(face_jpeg: bytes) -> None:
    """One worker, 12 clients: requests that wait together are classified together (micro-batch)."""
    with api_server(workers=1, batch=8) as url, ThreadPoolExecutor(12) as clients:
        answers = list(
            clients.map(lambda _: post(url, face_jpeg, "image/jpeg", classify="faces").json(), range(12))
        )
    faces = len(answers[0]["faces"])
    batches = [answer["timing_ms"]["batch"] for answer in answers]
    assert all(len(answer["faces"]) == faces for answer in answers)
    assert max(batches) > faces, f"every classifier call held one request's faces only: {batches}"
    assert all(batch % faces == 0 and batch <= 8 * faces for batch in batches)
    first = answers[0]["faces"][0]["classification"]
    assert all(answer["faces"][0]["classification"] == first for answer in answers), (
        "batching changes nothing"
    )


def test_a_client_hanging_up_mid_upload_leaves_no_trace(
    detect_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    port = int(detect_url.split(":")[2].split("/")[0])
    head = b"POST /api/v1/detect HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\n"
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(head + b"Content-Length: 100000\r\n\r\n" + bytes(1000))
        time.sleep(0.2)
    metrics = detect_url.replace("api/v1/detect", "metrics")
    wait_for(lambda: 'status="499"' in httpx.get(metrics).text, what="the hang-up counted")
    assert post(detect_url, bytes(10), "image/jpeg").status_code == 415, "the server goes on"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "Traceback" not in capfd.readouterr().err
