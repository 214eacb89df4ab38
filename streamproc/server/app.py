"""The HTTP server: a stdlib ThreadingHTTPServer in a background thread.

Endpoints: ``/`` (live page), ``/healthz``, ``/readyz``, ``/metrics``, ``/api/stats``,
``/api/sources``, ``/live/{source}.jpg`` and ``/live/{source}.mjpeg``. Request threads only read
the pipeline's statistics and the live view's latest frames; nothing here runs in the inference loop.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamproc.config import HttpSettings
from streamproc.errors import OutputError
from streamproc.server.health import pipeline_readiness
from streamproc.server.metrics import metrics_registry
from streamproc.server.page import live_page
from streamproc.sinks.live import LiveFrame, LiveViewSink

if TYPE_CHECKING:
    from streamproc.pipeline import Pipeline

log = logging.getLogger(__name__)

BOUNDARY = "streamproc-frame"
POLL_S = 0.5  # how often a waiting stream checks whether the server is closing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer left open must not keep the process alive

    def __init__(self, address: tuple[str, int], app: StatusServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, _Handler)


class StatusServer:
    """Serves a pipeline's health, metrics, stats and live view. Binds on construction (so a busy
    port fails at start-up with an OutputError); ``start`` serves in a thread, ``stop`` ends it."""

    def __init__(self, settings: HttpSettings, pipeline: Pipeline, live: LiveViewSink) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.live = live
        self.closing = threading.Event()
        self.registry = metrics_registry(pipeline, live)
        try:
            self._httpd = _Server((settings.host, settings.port), self)
        except OSError as exc:
            raise OutputError(
                f"cannot listen on {settings.host}:{settings.port} for the HTTP server: "
                f"{exc.strerror or exc}: choose another http.port (or --http) or stop what uses it"
            ) from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(POLL_S,), name="http")

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        log.info("HTTP server on %s (live view; /metrics, /healthz, /readyz, /api/stats)", self.url)

    def stop(self) -> None:
        """Stop serving; open live streams notice within POLL_S and end."""
        self.closing.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> StatusServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def sources(self) -> list[dict[str, Any]]:
        """What /api/sources answers: one entry per source, its state and numbers."""
        stats = self.pipeline.stats_snapshot()["sources"]
        viewers = self.live.viewers()
        found = []
        for source_id, source in self.pipeline.sources_snapshot().items():
            numbers = stats.get(source_id, {})
            found.append(
                {
                    "id": source_id,
                    "url": source["url"],
                    "state": source["state"],
                    "fps": numbers.get("fps", 0.0),
                    "faces": numbers.get("faces", 0),
                    "frames_processed": numbers.get("frames_processed", 0),
                    "frames_decoded": numbers.get("frames_decoded", 0),
                    "frames_dropped": numbers.get("frames_dropped", 0),
                    "reconnects": numbers.get("reconnects", 0),
                    "last_error": source["error"] or numbers.get("last_error"),
                    "viewers": viewers.get(source_id, 0),
                }
            )
        return found


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "streamproc"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        app = self.server.app
        path = unquote(urlsplit(self.path).path)
        if path == "/":
            ids = list(app.pipeline.sources_snapshot())
            self._send(HTTPStatus.OK, live_page(ids).encode(), "text/html; charset=utf-8")
        elif path == "/healthz":
            self._json(HTTPStatus.OK, {"status": "ok"})
        elif path == "/readyz":
            ready, reasons = pipeline_readiness(app.pipeline)
            status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
            self._json(status, {"ready": ready, "reasons": reasons})
        elif path == "/metrics":
            self._send(HTTPStatus.OK, generate_latest(app.registry), CONTENT_TYPE_LATEST)
        elif path == "/api/stats":
            self._json(
                HTTPStatus.OK, {**app.pipeline.stats_snapshot(), "sinks": app.pipeline.sinks_snapshot()}
            )
        elif path == "/api/sources":
            self._json(HTTPStatus.OK, {"sources": app.sources()})
        elif path.startswith("/live/") and path.endswith((".jpg", ".mjpeg")):
            source_id, _, kind = path.removeprefix("/live/").rpartition(".")
            self._live(app, source_id, kind)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def _live(self, app: StatusServer, source_id: str, kind: str) -> None:
        if source_id not in app.pipeline.sources_snapshot():
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no source named {source_id!r}"})
            return
        if kind == "mjpeg":
            self._stream(app, source_id)
            return
        result = app.live.latest(source_id)
        if result is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"no frame of {source_id} processed yet"})
            return
        frame = app.live.jpeg(result)
        headers = {**self._frame_headers(frame), "Cache-Control": "no-store"}
        self._send(HTTPStatus.OK, frame.jpeg, "image/jpeg", headers)

    def _stream(self, app: StatusServer, source_id: str) -> None:
        """MJPEG. Browsers show a part only once the next one arrives, so while no new frame comes
        (a paused or finished source) the current one is sent again every POLL_S; it is encoded once."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        interval = 1.0 / app.settings.live_fps
        shown = None
        with app.live.watching(source_id):
            try:
                self.wfile.write(f"--{BOUNDARY}\r\n".encode())
                while not app.closing.is_set() and not self._client_gone():
                    result = app.live.wait_newer(source_id, shown, POLL_S) or shown
                    if result is None:
                        continue  # nothing processed yet
                    began = time.monotonic()
                    frame = app.live.jpeg(result)
                    headers = "".join(f"{k}: {v}\r\n" for k, v in self._frame_headers(frame).items())
                    head = f"Content-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n{headers}\r\n"
                    self.wfile.write(head.encode() + frame.jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
                    self.wfile.flush()
                    shown = result
                    app.closing.wait(max(0.0, interval - (time.monotonic() - began)))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer went away

    def _client_gone(self) -> bool:
        """A viewer sends nothing after its request, so a readable socket means it hung up; checked
        while no frame comes (a finished source), when writing would not notice."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    @staticmethod
    def _frame_headers(frame: LiveFrame) -> dict[str, str]:
        headers = {"X-Frame-Index": str(frame.index)}
        if frame.pts is not None:
            headers["X-Frame-Pts"] = f"{frame.pts:.6f}"
        return headers

    def _json(self, status: HTTPStatus, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
