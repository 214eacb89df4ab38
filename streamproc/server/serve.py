"""``streamproc serve``: the HTTP server with the detection API, and the configured sources (if any)
through the pipeline with their live view. Serves until SIGINT/SIGTERM, also after files end."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from streamproc.config.settings import Settings
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import Pipeline, RunReport
from streamproc.server.access import load_token
from streamproc.server.app import StatusServer
from streamproc.server.detect_pool import open_detect_pool
from streamproc.server.tls import tls_options
from streamproc.server.view import NoSources
from streamproc.sinks.live import LiveViewSink

log = logging.getLogger(__name__)

StopHook = Callable[[Callable[[], None]], None]  # installs a callback for SIGINT/SIGTERM


def serve(settings: Settings, on_stop: StopHook) -> tuple[Pipeline, RunReport] | None:
    """Serve until stopped; returns the sources' pipeline and run report (None without sources)."""
    load_token(settings.http)  # a missing token or an encrypted key fails before any model loads
    tls_options(settings.http)
    detect = open_detect_pool(settings) if settings.http.api.enabled else None
    stopped = threading.Event()
    try:
        if not settings.sources:
            with StatusServer(settings.http, NoSources(), None, detect, require_sources=False):
                on_stop(stopped.set)
                stopped.wait()
            return None
        live = LiveViewSink(settings.http.jpeg_quality)
        pipeline = build_pipeline(settings, extra_sinks=[live])
        with StatusServer(settings.http, pipeline, live, detect):

            def stop() -> None:
                stopped.set()
                pipeline.stop()

            on_stop(stop)
            report = pipeline.run()
            if not stopped.is_set():
                log.info("the sources have ended; still serving (Ctrl-C or SIGTERM to stop)")
                stopped.wait()
            return pipeline, report
    finally:
        if detect is not None:
            detect.close()
