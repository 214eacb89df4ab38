"""Files written whole or not at all: readers never see half a JPEG, half a model or half a video."""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

# a process's open files by name (/dev/stdout, /dev/fd/1, /proc/self/fd/1) are streams even when they
# lead to a regular file: nothing may be written beside them or renamed over them
_STREAM_NAMES = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/")


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``path``; it replaces ``path`` only if the block succeeds."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; these are ordinary data files
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete: beside it, with the same extension so that
    players and readers open it after a crash (out.mp4 -> out.partial.mp4)."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def is_stream(path: Path) -> bool:
    """Whether an output is written in place as a stream, never replaced: a device, a named pipe, a
    terminal, or an open file by name (``/dev/stdout``, ``/proc/self/fd/1``, a link to one)."""
    if os.path.abspath(path).startswith(_STREAM_NAMES):
        return True
    if os.path.islink(path) and os.readlink(path).startswith("/proc/"):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing: a new regular file
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)


def commit(partial: Path, path: Path) -> None:
    """Move a finished file over its target in one step (readers see the old or the new file)."""
    with open(partial, "rb") as stream:
        os.fsync(stream.fileno())
    os.replace(partial, path)


def settle(finished: Iterable[tuple[Path, Path]], run_ok: bool) -> list[Path]:
    """Move each finished ``(partial, target)`` over its target, unless the run failed and the
    target exists: a failed run never replaces a file that was there before. Returns the partial
    files kept (each is complete and valid; the target is untouched)."""
    kept = []
    for partial, path in finished:
        if run_ok or not os.path.lexists(path):
            commit(partial, path)
            continue
        kept.append(partial)
        log.warning("the run failed: its output is kept as %s; %s is untouched", partial, path)
    return kept


def discard_if_empty(path: Path) -> None:
    """Remove a file that start-up checks created and nothing was written to."""
    if path.is_file() and not path.stat().st_size:  # never a device or a pipe (--events /dev/null)
        path.unlink()


def free_name(path: Path) -> Path:
    """``path`` with the first number that makes it a new file: a.partial.mp4 -> a.partial-1.mp4."""
    number = 1
    while (candidate := path.with_name(f"{path.stem}-{number}{path.suffix}")).exists():
        number += 1
    return candidate
