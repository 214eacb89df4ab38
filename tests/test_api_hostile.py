"""Hostile requests against a real ``streamproc serve`` process on 127.0.0.1: a scan-bomb progressive
JPEG, a JPEG of millions of comment segments, a multipart body of a million empty parts, clients
hanging up mid-decode, SIGTERM mid-decode, silent TLS sockets, an encrypted key, a truncated JPEG.
Speeds are measured in benchmarks/bench_api_hostile.py; here a stall of seconds fails."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hostile_uploads import comment_bomb, empty_parts_form, scan_bomb, self_signed, truncated_jpeg
from http_helpers import cli_server

pytestmark = pytest.mark.slow  # a real serve process under hostile uploads

# a stall of the event loop as the issue saw it (3 to 8 s per hostile request) fails; the
# benchmark measures the real p99 (under 100 ms)
NO_STALL_S = 2.0
PASSPHRASE = "correct horse battery staple"


def serve_env(**api: object) -> dict[str, str]:
    return {f"STREAMPROC_HTTP__API__{name.upper()}": str(value) for name, value in api.items()}


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """``streamproc serve`` with the default limits; yields its base url."""
    with cli_server("serve", "--http", "127.0.0.1:0") as (_process, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def face_jpeg(shared_dir: Path) -> bytes:
    return (shared_dir / "images" / "face.jpg").read_bytes()


def slowest_healthz_while(base: str, work: Callable[[], object]) -> tuple[object, float]:
    """Run ``work`` in a thread while /healthz is asked in a loop; its result, the slowest answer."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    slowest = 0.0
    with httpx.Client() as client:
        while thread.is_alive():
            started = time.perf_counter()
            assert client.get(f"{base}/healthz", timeout=30).status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.02)
    thread.join()
    return result[0], slowest


def detect(base: str, body: bytes, content_type: str = "image/jpeg") -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/detect", content=body, headers={"Content-Type": content_type}, timeout=120
    )


def test_a_scan_bomb_is_refused_by_its_scan_count_before_decoding(served: str) -> None:
    answer, slowest = slowest_healthz_while(served, lambda: detect(served, scan_bomb(scans=2000)))
    assert isinstance(answer, httpx.Response)
    assert answer.status_code == 422
    assert "2000 scans, more than http.api.max_scans (100)" in answer.json()["error"]
    assert slowest < NO_STALL_S


@pytest.mark.slow
def test_a_decode_over_the_cpu_budget_is_ended_and_the_worker_serves_the_next(face_jpeg: bytes) -> None:
    env = serve_env(max_scans=100_000, cpu_budget_s=1, workers=1)
    with cli_server("serve", "--http", "127.0.0.1:0", env=env) as (process, port):
        base = f"http://127.0.0.1:{port}"
        before = detect(base, face_jpeg).json()["faces"]
        answer, slowest = slowest_healthz_while(base, lambda: detect(base, scan_bomb(scans=2000)))
        assert isinstance(answer, httpx.Response)
        assert answer.status_code == 422
        assert answer.json()["error"] == (
            "decoding the image took more than the CPU budget of 1 s (http.api.cpu_budget_s)"
        )
        assert slowest < NO_STALL_S
        after = detect(base, face_jpeg)  # the one worker is free again, with a fresh decoder
        assert after.status_code == 200 and after.json()["faces"] == before
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def send_and_hang_up(port: int, body: bytes, wait_s: float) -> None:
    """POST ``body`` on a raw socket, wait ``wait_s`` (the decode is under way), hang up."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        head = "POST /api/v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
        conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(wait_s)


@pytest.mark.slow
def test_a_client_hanging_up_mid_decode_frees_its_worker(face_jpeg: bytes) -> None:
    """One worker, a budget of a minute: the 4000-scan bomb would hold it for ~18 s of CPU."""
    env = serve_env(max_scans=100_000, cpu_budget_s=60, workers=1)
    with cli_server("serve", "--http", "127.0.0.1:0", env=env) as (process, port):
        base = f"http://127.0.0.1:{port}"
        before = detect(base, face_jpeg).json()["faces"]  # the decoder process is up
        send_and_hang_up(port, scan_bomb(scans=4000), wait_s=1.0)
        started = time.perf_counter()
        after = detect(base, face_jpeg)
        waited = time.perf_counter() - started
        assert after.status_code == 200 and after.json()["faces"] == before
        assert waited < 8.0, f"the face waited {waited:.1f} s behind a decode nobody reads"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'streamproc_api_requests_total{status="499"} 1.0' in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


@pytest.mark.slow
def test_sigterm_mid_decode_ends_serve_at_once_without_a_traceback(face_jpeg: bytes) -> None:
    env = serve_env(max_scans=100_000, cpu_budget_s=60, workers=1)
    with cli_server("serve", "--http", "127.0.0.1:0", env=env) as (process, port):
        base = f"http://127.0.0.1:{port}"
        assert detect(base, face_jpeg).status_code == 200
        answers: list[httpx.Response] = []
        client = threading.Thread(target=lambda: answers.append(detect(base, scan_bomb(scans=4000))))
        client.start()
        time.sleep(1.5)  # decoding
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
        took = time.perf_counter() - stopping
        client.join(30)
    assert process.returncode == 0, log
    assert took < 5.0, f"serve took {took:.1f} s to stop"
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert answers and answers[0].status_code == 503
    assert answers[0].json()["error"] == "the server is stopping"


def test_a_million_empty_form_parts_are_refused_as_they_are_met(served: str) -> None:
    body, content_type = empty_parts_form(1_000_000)
    assert len(body) > 15_000_000
    answer, slowest = slowest_healthz_while(served, lambda: detect(served, body, content_type))
    assert isinstance(answer, httpx.Response)
    assert answer.status_code == 413
    assert answer.json()["error"] == "the multipart form has more than 16 parts"
    assert slowest < NO_STALL_S


def test_a_part_header_of_many_kilobytes_is_refused(served: str, face_jpeg: bytes) -> None:
    filler = b"".join(b"X-Filler-%d: " % n + b"a" * 3000 + b"\r\n" for n in range(3))
    body = (
        b"--b0undary\r\n" + filler + b'Content-Disposition: form-data; name="file"\r\n\r\n'
        + face_jpeg + b"\r\n--b0undary--\r\n"
    )  # fmt: skip
    answer = detect(served, body, "multipart/form-data; boundary=b0undary")
    assert answer.status_code == 413
    assert answer.json()["error"] == "a multipart part's headers are over 8192 bytes"


def test_millions_of_comment_segments_end_the_header_walk_early(served: str, face_jpeg: bytes) -> None:
    body = comment_bomb(face_jpeg, 4_000_000)
    answer, slowest = slowest_healthz_while(served, lambda: detect(served, body))
    assert isinstance(answer, httpx.Response)
    assert answer.status_code == 422
    assert answer.json()["error"] == "the JPEG has more than 1000 segments before its frame header"
    assert slowest < NO_STALL_S


def test_a_truncated_jpeg_with_an_end_marker_answers_with_a_warning(served: str, face_jpeg: bytes) -> None:
    whole = detect(served, face_jpeg)
    assert whole.status_code == 200 and whole.json()["warnings"] == []
    cut = detect(served, truncated_jpeg(face_jpeg, 0.8))
    assert cut.status_code == 200
    assert cut.json()["warnings"] == ["Corrupt JPEG data: premature end of data segment"]
    assert (cut.json()["width"], cut.json()["height"]) == (whole.json()["width"], whole.json()["height"])


def silent_sockets(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]


def closed_by_server(conn: socket.socket, within_s: float) -> bool:
    conn.settimeout(within_s)
    try:
        return conn.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_silent_tls_sockets_are_dropped_after_the_request_timeout(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    env = {"STREAMPROC_HTTP__TLS_CERT": str(cert), "STREAMPROC_HTTP__TLS_KEY": str(key)}
    env["STREAMPROC_HTTP__REQUEST_TIMEOUT"] = "2"
    with cli_server("serve", "--http", "127.0.0.1:0", env=env) as (process, port):
        started = time.perf_counter()
        idle = silent_sockets(port, 20)
        assert all(closed_by_server(conn, within_s=10) for conn in idle)
        took = time.perf_counter() - started
        assert 1.5 < took < 10, took  # asyncio's own default would be 60 s
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=context) as client:  # a real client still gets in
            assert client.get(f"https://localhost:{port}/healthz").status_code == 200
        for conn in idle:
            conn.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (None, "is encrypted: give its passphrase in STREAMPROC_HTTP__TLS_KEY_PASSWORD"),
        ("wrong passphrase", "cannot be decrypted with http.tls_key_password: wrong passphrase?"),
    ],
)
def test_an_encrypted_key_without_its_passphrase_gets_one_clear_line(
    tmp_path: Path, given: str | None, said: str
) -> None:
    cert, key = self_signed(tmp_path, passphrase=PASSPHRASE)
    env = {"STREAMPROC_HTTP__TLS_CERT": str(cert), "STREAMPROC_HTTP__TLS_KEY": str(key)}
    if given is not None:
        env["STREAMPROC_HTTP__TLS_KEY_PASSWORD"] = given
    done = subprocess.run(
        [sys.executable, "-m", "streamproc", "serve", "--http", "127.0.0.1:0"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(f"streamproc: error: http.tls_key {key} {said}"), errors
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr and "PEM lib" not in done.stderr
    assert PASSPHRASE not in done.stderr


def test_an_encrypted_key_with_its_passphrase_serves_https(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, passphrase=PASSPHRASE)
    env = {
        "STREAMPROC_HTTP__TLS_CERT": str(cert),
        "STREAMPROC_HTTP__TLS_KEY": str(key),
        "STREAMPROC_HTTP__TLS_KEY_PASSWORD": PASSPHRASE,
    }
    with cli_server("serve", "--http", "127.0.0.1:0", env=env) as (process, port):
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=context) as client:
            assert client.get(f"https://localhost:{port}/healthz").status_code == 200
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    assert PASSPHRASE not in log


def test_the_schema_offers_an_upload_and_lists_400_not_422(served: str) -> None:
    schema = httpx.get(f"{served}/openapi.json").json()
    operation = schema["paths"]["/api/v1/detect"]["post"]
    content = operation["requestBody"]["content"]
    assert next(iter(content)) == "multipart/form-data"  # shown first: the file chooser
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert content["image/jpeg"]["schema"] == {"type": "string", "format": "binary"}
    assert "400" in operation["responses"]
    for path, operations in schema["paths"].items():
        for method, each in operations.items():
            answers = each.get("responses", {})
            assert answers.get("422", {}).get("description") != "Validation Error", (path, method)
    assert "HTTPValidationError" not in schema.get("components", {}).get("schemas", {})
    bad = httpx.post(f"{served}/api/v1/detect", params={"top_k": "many"}, content=b"")
    assert bad.status_code == 400
