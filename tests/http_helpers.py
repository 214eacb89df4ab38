"""A real pipeline behind a real HTTP server on a free port, and a tiny HTTP client for the tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from streamproc.config.settings import HttpSettings, Settings, SourceSettings
from streamproc.pipeline.build import build_pipeline
from streamproc.pipeline.run import Pipeline, RunReport
from streamproc.server import StatusServer
from streamproc.sinks.base import Sink
from streamproc.sinks.live import LiveViewSink


@dataclass
class Reply:
    status: int
    headers: Message  # names are case-insensitive (the server sends them in lower case)
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def get(url: str, timeout: float = 10) -> Reply:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return Reply(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def wait_for(condition: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Served:
    pipeline: Pipeline
    live: LiveViewSink
    server: StatusServer
    thread: threading.Thread
    reports: list[RunReport]

    def url(self, path: str = "") -> str:
        return self.server.url + path.lstrip("/")

    def wait_done(self, timeout: float = 60) -> RunReport:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not finish"
        return self.reports[0]


@contextmanager
def serve(videos: Sequence[Path], extra_sinks: Sequence[Sink] = (), start: bool = True) -> Iterator[Served]:
    """Open a pipeline over ``videos`` with the HTTP server on 127.0.0.1:<free port>; the run goes on
    in a thread when ``start``. Everything is stopped and joined on exit."""
    settings = Settings(
        sources=[SourceSettings(url=str(video)) for video in videos],
        http=HttpSettings(enabled=True, host="127.0.0.1", port=0),
    )
    live = LiveViewSink(settings.http.jpeg_quality)
    pipeline = build_pipeline(settings, extra_sinks=[live, *extra_sinks])
    reports: list[RunReport] = []
    thread = threading.Thread(target=lambda: reports.append(pipeline.run()), name="test-run", daemon=True)
    with StatusServer(settings.http, pipeline, live) as server:
        if start:
            thread.start()
        try:
            yield Served(pipeline, live, server, thread, reports)
        finally:
            pipeline.stop()
            if thread.is_alive():
                thread.join(30)


def _unbuffered_lines(fd: int) -> Iterator[str]:
    """Lines read a byte at a time, straight from the pipe: iterating the text stream would read
    ahead, and ``communicate()`` later reads the pipe itself, losing what that stream buffered."""
    line = b""
    while chunk := os.read(fd, 1):
        line += chunk
        if chunk == b"\n":
            yield line.decode(errors="replace")
            line = b""


@contextmanager
def cli_server(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, int]]:
    """``python -m streamproc ARGS`` serving HTTP; yields the process and the port its log names.
    The process is killed on exit if the test has not ended it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streamproc", *args],
        cwd=Path(__file__).resolve().parents[1],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stderr is not None
        port = None
        for line in _unbuffered_lines(process.stderr.fileno()):
            found = re.search(r"HTTP server on https?://\S+:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "the server's address is logged"
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
