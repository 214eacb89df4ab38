"""A text file that only ever holds whole lines, even when the disk fills up or the process dies;
and standard output as such a file, whose reader may stop reading (``| head``)."""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from pathlib import Path

from streamproc.core.errors import OutputError

log = logging.getLogger(__name__)

STDOUT = Path("-")

_TAIL = 1 << 16  # bytes read back from the end to find the last complete line


class LineFile:
    """Appends lines with one ``write`` each. A write that fails half-way (disk full) is cut back
    to the last whole line before the error is raised, so that a retry neither tears nor
    duplicates a record; a file that already ends in a torn line (a crash during an earlier run)
    is cut back to its last whole line when opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._repair()

    def write(self, line: bytes) -> None:
        """Append ``line`` (ending in a newline) whole, or raise OSError leaving the file as it was."""
        write_whole(self._fd, line)

    def close(self) -> None:
        """Flush to the disk, so that a power cut after the run loses none of it, and close."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a file that can be synced (a pipe, a terminal)
                raise OutputError(f"{self.path} may be incomplete: sync failed: {exc.strerror}") from None
        finally:
            os.close(self._fd)

    def _repair(self) -> None:
        """Cut a torn last line."""
        status = os.fstat(self._fd)
        if not stat.S_ISREG(status.st_mode):  # a pipe, a terminal, /dev/null: nothing to read back
            return
        size = status.st_size
        if not size:
            return
        with open(self.path, "rb") as reader:
            reader.seek(max(0, size - _TAIL))
            tail = reader.read()
        if tail.endswith(b"\n"):
            return
        newline = tail.rfind(b"\n")
        keep = size - len(tail) + newline + 1 if newline >= 0 else (0 if size <= _TAIL else size)
        if keep == size:  # no line end in the last 64 KiB: not a file of lines; leave it
            log.warning("%s does not end in a line break: new lines start on a fresh one", self.path)
            self.write(b"\n")
            return
        log.warning(
            "%s ended in an incomplete line (%d bytes, left by a run that was stopped hard): removed",
            self.path,
            size - keep,
        )
        os.ftruncate(self._fd, keep)


def write_whole(fd: int, line: bytes) -> None:
    """Write all of ``line`` to ``fd``, or raise OSError after cutting off the part of it that was
    written (in a regular file; a pipe cannot take bytes back)."""
    written = 0
    try:
        while written < len(line):
            written += os.write(fd, line[written:])
    except OSError:
        if written and stat.S_ISREG(os.fstat(fd).st_mode):
            end = os.lseek(fd, -written, os.SEEK_CUR)  # appending or not, the offset follows the writes
            os.ftruncate(fd, end)
        raise


class StdoutLines:
    """Standard output as a file of lines: each written whole as it comes (also when standard output
    is a file on a disk that fills up); never closed here.

    A reader that goes away (``streamproc run ... --events - | head``) breaks the pipe. As for other
    Unix tools, that means the reader has read enough, not that something failed: ``reader_gone``
    becomes true, later lines are dropped, and standard output is pointed at /dev/null so that
    Python's own flush at exit does not report the broken pipe once more."""

    path = STDOUT

    def __init__(self) -> None:
        if sys.stdout is None:  # started with standard output closed (`>&-`)
            raise OutputError("events to '-' (standard output), but it is closed: give a file name")
        sys.stdout.flush()  # lines go straight to the file descriptor: whole, even on a full disk
        self.reader_gone = False

    def write(self, line: bytes) -> None:
        if self.reader_gone:
            return
        try:
            write_whole(sys.stdout.fileno(), line)
        except BrokenPipeError:
            self._reader_left()

    def close(self) -> None:
        """Nothing is buffered here."""

    def _reader_left(self) -> None:
        self.reader_gone = True
        stdout_to_devnull()
        log.info("standard output: its reader went away (a closed pipe): no more records written there")


def stdout_to_devnull() -> None:
    """Point standard output at /dev/null: what is still buffered for a reader that is gone then
    goes nowhere instead of failing again when Python flushes it at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
