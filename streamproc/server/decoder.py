"""Image decoding for the HTTP API in a child process under a CPU budget (the child: decode_child.py).

Why a process: the cost of a decode is not bounded by the upload's size (a 20 KB progressive JPEG
of 2000 scans takes 9 s at 49 MP, and a scan-count limit alone does not bound scans x pixels x
components), and a thread inside a C decoder can be neither stopped nor timed. A child can: its
CPU timer ends it when the budget is spent, and ``interrupt`` kills it when the client has gone or
the server stops. One ``Decoder`` per API worker thread; a killed child is replaced at once.

The image goes to the child through its stdin; the pixels come back through a shared memory file
(memfd) as large as the largest image allowed, sparse until written: through the pipe, a 12 MP
decode took 70-90 % longer than in-process, through shared memory 0-35 % (benchmarks/README.md).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from streamproc.media.still_images import ImageError, ImageHeader
from streamproc.server.decode_child import ANSWER, REQUEST

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# wall-clock backstop for a child that waits instead of computing (its CPU timer would not fire):
# generous, as the machine may be busy; the CPU budget is the limit that normally acts
WALL_FACTOR = 5.0
WALL_SLACK_S = 5.0


class DecodeStopped(Exception):
    """The decode was interrupted: its client went away, or the server is stopping."""


@dataclass(frozen=True)
class Decoded:
    bgr: np.ndarray
    header: ImageHeader
    warnings: list[str]  # what the decoder said about damage it papered over


class Decoder:
    """One child decoding one image at a time. ``decode`` is called by one thread; ``interrupt``
    and ``close`` may come from any other."""

    def __init__(self, budget_s: float, max_pixels: int) -> None:
        self.budget_s = budget_s
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._closed = False
        self._current: object | None = None  # the token of the decode under way
        self._interrupted = False
        # the pixels come back through shared memory: a pipe would copy them twice more
        self._shared = os.memfd_create("streamproc-decoded-pixels")
        os.ftruncate(self._shared, max_pixels * 3)  # sparse: pages exist once written
        self._pixels = mmap.mmap(self._shared, max_pixels * 3)
        self._child = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "streamproc.server.decode_child", str(self._shared)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PACKAGE_ROOT,  # -m looks here first: the child runs this very streamproc
            pass_fds=(self._shared,),
        )

    def decode(self, data: bytes, token: object = None) -> Decoded:
        """The image's pixels; ImageError when it is damaged, too big or over the CPU budget (kind
        "costly"), DecodeStopped when ``interrupt(token)`` or ``close`` came first."""
        with self._lock:
            if self._closed:
                raise DecodeStopped("the server is stopping")
            child, self._current, self._interrupted = self._child, token, False
        try:
            meta, pixels = self._exchange(child, data)
        finally:
            with self._lock:
                self._current = None
        if "error" in meta:
            raise ImageError(meta["error"], meta["message"])
        header = ImageHeader(meta["format"], meta["width"], meta["height"])
        return Decoded(pixels, header, meta["warnings"])

    def _exchange(self, child: subprocess.Popen[bytes], data: bytes) -> tuple[dict, np.ndarray]:
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(REQUEST.pack(self.budget_s, self.max_pixels, len(data)))
            child.stdin.write(data)
            child.stdin.flush()
            ready, _, _ = select.select([child.stdout], [], [], self.budget_s * WALL_FACTOR + WALL_SLACK_S)
            if not ready:
                child.kill()
            (length,) = ANSWER.unpack(_read_exact(child.stdout, ANSWER.size))
            meta = json.loads(_read_exact(child.stdout, length))
        except (OSError, EOFError):
            raise self._lost(child) from None
        shape = meta.get("shape", [0])  # an error's answer has none
        # copied out: the next decode writes over the shared buffer while this one's job goes on
        return meta, np.frombuffer(self._pixels, np.uint8, int(np.prod(shape))).reshape(shape).copy()

    def _lost(self, child: subprocess.Popen[bytes]) -> Exception:
        """Why the child ended mid-decode, after replacing it (unless closed)."""
        child.kill()
        code = child.wait()
        _close_pipes(child)
        with self._lock:
            interrupted = self._interrupted or self._closed
            if not self._closed:
                self._child = self._start()
        if interrupted:
            return DecodeStopped("the decode was interrupted")
        if code in (-signal.SIGPROF, -signal.SIGKILL):  # the CPU timer, or the wall-clock backstop
            return ImageError(
                "costly",
                f"decoding the image took more than the CPU budget of {self.budget_s:g} s "
                "(http.api.cpu_budget_s)",
            )
        log.warning("detection API: the image decoder ended with code %s; started a new one", code)
        return ImageError("damaged", "the image made the decoder fail")

    def interrupt(self, token: object) -> bool:
        """Stop the decode of ``token`` if it is under way; True when it was."""
        with self._lock:
            if self._current is None or self._current is not token:
                return False
            self._interrupted = True
            self._child.kill()
            return True

    def close(self) -> None:
        """End the child; a decode under way (and any later one) raises DecodeStopped."""
        with self._lock:
            if self._closed:  # the server stops the pool, and then closes it
                return
            self._closed = self._interrupted = True
            child, busy = self._child, self._current is not None
            child.kill()
        if not busy:  # else the decoding thread reaps it, as after any lost child
            child.wait()
            _close_pipes(child)
        os.close(self._shared)  # the mapping stays until the last array made from it is gone


def _close_pipes(child: subprocess.Popen[bytes]) -> None:
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the decoder ended")
    return data
