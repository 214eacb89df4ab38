"""Checks on what a file source is given, before FFmpeg sees it, and the tally of damaged packets."""

from __future__ import annotations

import re
import stat
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from streamproc.capture.urls import redact
from streamproc.core.errors import InputError

STDIN = "-"
STDIN_ID = "stdin"  # the source id of "-": in records, MQTT topics and {source} output names
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
SUPPORTED = (
    "video files (a path), '-' or a named pipe (a stream), rtsp:// or rtsps:// cameras, /dev/videoN, camera:N"
)


def check_input(url: str, loop: bool) -> None:
    """Raise InputError at once for what cannot be read as a file: unknown url schemes, missing
    files, folders, empty files, and replaying (``loop``) a stream that can only be read once.

    Named pipes and ``-`` (stdin) are streams: they are read as they come, never refused as empty.
    """
    scheme = _SCHEME.match(url)
    if scheme:
        name = scheme["scheme"].lower()
        hint = ": give the path itself" if name == "file" else ""
        raise InputError(
            f"input {redact(url)}: url scheme '{name}://' is not supported{hint};"
            f" streamproc reads {SUPPORTED}"
        )
    if url == STDIN:
        if loop:
            raise InputError("input '-' (stdin) is a stream that can be read once: it cannot loop")
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("input '-' reads a video from stdin, but stdin is a terminal: pipe one in")
        return
    path = Path(url)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"input {path} does not exist: check the path") from None
    except OSError as exc:
        raise InputError(f"input {path} cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"input {path} is a directory, not a video file")
    if stat.S_ISFIFO(mode):
        if loop:
            raise InputError(f"input {path} is a named pipe, a stream that can be read once: it cannot loop")
        return
    if path.stat().st_size == 0:
        raise InputError(f"input {path} is empty (0 bytes): the recording is missing or was not written")


class Damage:
    """Packets that could not be decoded: how many, and between which media times."""

    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    def add(self, packet: Any, time_base: Fraction) -> None:
        self.count += 1
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None and time_base:
            seconds = float(stamp * time_base)
            self.first = seconds if self.first is None else min(self.first, seconds)
            self.last = seconds if self.last is None else max(self.last, seconds)

    def describe(self) -> str:
        """'' when nothing was damaged, else e.g. '7 damaged packets skipped (12.04 s to 13.16 s)'."""
        if not self.count:
            return ""
        where = f" ({self.first:.2f} s to {self.last:.2f} s)" if self.first is not None else ""
        return f"{self.count} damaged packet{'s' if self.count > 1 else ''} skipped{where}"
