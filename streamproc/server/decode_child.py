"""The child process that decodes uploaded images for the HTTP API (the parent's side: decoder.py).

A decoder's work is not bounded by the size of its input (a progressive JPEG of thousands of tiny
scans walks every pixel once per scan) and a thread inside a C decoder cannot be stopped. Here each
decode runs under a CPU-time timer (``ITIMER_PROF``): when the budget is spent, SIGPROF's default
action ends this process at once, wherever it is, and the parent starts a fresh one.

What a decoder writes to stderr while decoding (libjpeg's "Corrupt JPEG data: premature end of data
segment") is caught and answered as warnings: the decode went on with made-up pixels.

Started as ``python -m streamproc.server.decode_child FD``, FD a shared memory file the parent
maps too. One request at a time on stdin, one answer on stdout:
    request: REQUEST (CPU budget in s, most pixels, data length), then the image's bytes
    answer:  ANSWER (length of the JSON meta), then the JSON meta; the BGR pixels, height * width
             * 3 bytes, are at the start of the shared file
             meta: {"format", "width", "height", "shape", "warnings"} or {"error", "message"}
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import signal
import struct
import sys
from collections.abc import Iterator
from typing import IO, Any

import cv2
import numpy as np

from streamproc.media.still_images import ImageError, decode_image

REQUEST = struct.Struct("<dQQ")
ANSWER = struct.Struct("<I")
MAX_WARNINGS = 4
MAX_WARNING_CHARS = 200


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


@contextlib.contextmanager
def _stderr_into(capture: int) -> Iterator[None]:
    """File descriptor 2 goes to ``capture`` (C libraries write there, not to sys.stderr)."""
    saved = os.dup(2)
    os.dup2(capture, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _take_lines(capture: int) -> list[str]:
    """The distinct lines written into ``capture`` since the last call, which empties it."""
    os.lseek(capture, 0, os.SEEK_SET)
    text = b""
    while chunk := os.read(capture, 65536):
        text += chunk
    os.ftruncate(capture, 0)
    os.lseek(capture, 0, os.SEEK_SET)
    lines = [line.strip()[:MAX_WARNING_CHARS] for line in text.decode(errors="replace").splitlines()]
    return list(dict.fromkeys(line for line in lines if line))[:MAX_WARNINGS]


def decode(data: bytes, max_pixels: int, budget_s: float, capture: int, shared: mmap.mmap) -> dict[str, Any]:
    """The meta of one answer, its pixels written into ``shared``. Over the CPU budget this process
    ends (SIGPROF)."""
    signal.setitimer(signal.ITIMER_PROF, budget_s)
    try:
        with _stderr_into(capture):
            bgr, header = decode_image(data, max_pixels)
    except ImageError as exc:
        return {"error": exc.kind, "message": str(exc)}
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        warnings = _take_lines(capture)
    meta = {
        "format": header.format,
        "width": header.width,
        "height": header.height,
        "shape": list(bgr.shape),
        "warnings": warnings,
    }
    np.frombuffer(shared, np.uint8, bgr.size).reshape(bgr.shape)[...] = bgr
    return meta


def main() -> int:
    # the parent decides when this process ends: Ctrl-C in a terminal reaches the whole group
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one decode, one core: the budget is the decode's own CPU time
    capture = os.memfd_create("streamproc-decoder-messages")  # in memory (streamproc is Linux-only)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    fd = int(sys.argv[1])
    shared = mmap.mmap(fd, os.fstat(fd).st_size)
    try:
        while (head := _read_exact(source, REQUEST.size)) is not None:
            budget_s, max_pixels, length = REQUEST.unpack(head)
            data = _read_exact(source, length)
            if data is None:
                break
            meta = decode(data, max_pixels, budget_s, capture, shared)
            encoded = json.dumps(meta).encode()
            sink.write(ANSWER.pack(len(encoded)) + encoded)
            sink.flush()
    except BrokenPipeError:  # the parent is gone or gave up on this answer
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
