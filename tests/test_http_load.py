"""The HTTP server under hostile load, against a real pipeline: slow clients are cut off by the request
timeout while inference keeps its frame rate; MJPEG viewers share one encode and leave nothing
behind (and no traceback) when they hang up."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from http_helpers import Served, serve, wait_for

from streamproc.config.settings import HttpSettings, Settings, SourceSettings
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import RunReport
from streamproc.server import StatusServer
from streamproc.sinks.live import LiveViewSink

pytestmark = pytest.mark.slow  # load from many HTTP clients

SLOW_CLIENTS = 200
REQUEST_TIMEOUT = 1.0


@contextmanager
def serve_paced(video: Path) -> Iterator[Served]:
    """A file replayed as a 25 fps camera, served with a 1 s request timeout."""
    http = HttpSettings(enabled=True, port=0, request_timeout=REQUEST_TIMEOUT)
    settings = Settings(sources=[SourceSettings(url=str(video), realtime=True)], http=http)
    live = LiveViewSink()
    pipeline = build_pipeline(settings, extra_sinks=[live])
    reports: list[RunReport] = []
    thread = threading.Thread(target=lambda: reports.append(pipeline.run()), daemon=True)
    with StatusServer(http, pipeline, live) as server:
        thread.start()
        try:
            yield Served(pipeline, live, server, thread, reports)
        finally:
            pipeline.stop()
            thread.join(30)


def processed(served: Served) -> int:
    return served.pipeline.stats_snapshot()["sources"]["long"]["frames_processed"]


def closed_by_server(conn: socket.socket) -> bool:
    conn.settimeout(0.2)
    try:
        return conn.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True  # reset


def test_slow_clients_are_cut_off_and_inference_keeps_its_rate(long_video: Path) -> None:
    with serve_paced(long_video) as served:
        wait_for(lambda: processed(served) > 10, what="the paced source to run")
        start_frames, started = processed(served), time.monotonic()
        address = (served.server.settings.host, served.server.port)
        clients = [socket.create_connection(address, timeout=5) for _ in range(SLOW_CLIENTS)]
        try:
            for conn in clients:  # headers that never end: one more line every 0.3 s
                conn.sendall(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            healthz_s = []
            while time.monotonic() - started < REQUEST_TIMEOUT + 1.5:
                for conn in clients:
                    with contextlib.suppress(OSError):  # already cut off
                        conn.sendall(b"X-Slow: 1\r\n")
                tick = time.monotonic()
                assert httpx.get(served.url("healthz"), timeout=5).status_code == 200
                healthz_s.append(time.monotonic() - tick)
                time.sleep(0.3)
            frames, seconds = processed(served) - start_frames, time.monotonic() - started
            still_open = [conn for conn in clients if not closed_by_server(conn)]
        finally:
            for conn in clients:
                conn.close()
        dropped = served.pipeline.stats_snapshot()["sources"]["long"]["frames_dropped"]
    assert not still_open, f"{len(still_open)} of {SLOW_CLIENTS} slow clients still connected"
    assert frames / seconds > 25 * 0.8, f"inference fell to {frames / seconds:.1f} fps of 25"
    assert dropped <= 2
    assert max(healthz_s) < 1.0, "a well-behaved client is answered meanwhile"


def hang_up(conn: socket.socket) -> None:
    """Close with a reset, as a browser tab that is killed does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_mjpeg_viewers_share_one_encode_and_hang_up_cleanly(
    sample_video: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    with serve([sample_video]) as served:
        served.wait_done()
        viewers = []
        for _ in range(30):
            conn = socket.create_connection((served.server.settings.host, served.server.port), timeout=10)
            conn.sendall(b"GET /live/sample.mjpeg HTTP/1.1\r\nHost: localhost\r\n\r\n")
            viewers.append(conn)
        for conn in viewers:
            data = b""
            while b"\xff\xd9" not in data:
                chunk = conn.recv(65536)
                assert chunk, "stream closed before a frame arrived"
                data += chunk
        wait_for(lambda: served.live.viewers().get("sample") == 30, what="30 viewers counted")
        encoded = served.live.frames_encoded
        for conn in viewers:
            hang_up(conn)
        wait_for(lambda: served.live.viewers().get("sample") == 0, what="every viewer forgotten")
        assert httpx.get(served.url("healthz")).status_code == 200
    assert encoded == 1, "one encode of the last frame, shared by all 30 viewers"
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]
    assert "Traceback" not in capfd.readouterr().err
