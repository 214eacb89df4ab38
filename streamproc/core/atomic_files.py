"""Files written whole or not at all: readers never see half a JPEG, half a model or half a video."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


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


def commit(partial: Path, path: Path) -> None:
    """Move a finished file over its target in one step (readers see the old or the new file)."""
    with open(partial, "rb") as stream:
        os.fsync(stream.fileno())
    os.replace(partial, path)


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
