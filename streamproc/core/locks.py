"""Exclusive locks on output files, held for a whole run: two runs never write one file.

``flock`` locks belong to an open file, so the files the sinks open and close meanwhile do not let
go of them (POSIX ``fcntl`` record locks would: closing any descriptor of the file drops them). The
kernel lists every lock with the process that took it in ``/proc/locks``: a refusal names it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from streamproc.core.atomic_files import discard_if_empty
from streamproc.core.errors import OutputError


class OutputInUseError(OutputError):
    """Another process holds the lock of an output file."""

    exit_code = 2


class OutputLocks:
    """Locks taken with :meth:`lock`, all let go by :meth:`release` (also when garbage collected)."""

    def __init__(self) -> None:
        self._held: dict[Path, int] = {}
        self._created: list[Path] = []  # made empty to be locked: removed at release if still empty

    def lock(self, path: Path, what: str) -> None:
        """Lock ``path`` (created if missing) or raise OutputInUseError naming who holds it."""
        if path in self._held:
            return
        created = not os.path.lexists(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write {what} {path}: {exc.strerror}: choose another path") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = lock_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise OutputError(f"cannot lock {what} {path}: {exc.strerror}") from None
            by = f" (process {holder})" if holder else ""
            raise OutputInUseError(
                f"{what} {path} is being written by another run{by}: wait for it to end, or choose"
                " another path"
            ) from None
        self._held[path] = fd
        if created:
            self._created.append(path)

    def release(self) -> None:
        """Let every lock go; remove the files made only to be locked that nothing wrote to."""
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()
        for path in self._created:
            discard_if_empty(path)
        self._created.clear()

    def __del__(self) -> None:
        for fd in self._held.values():
            os.close(fd)


def lock_holder(fd: int) -> int | None:
    """The process holding a lock on the file open as ``fd``, from /proc/locks; None if unknown."""
    info = os.fstat(fd)
    device = (os.major(info.st_dev), os.minor(info.st_dev))
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:  # not Linux
        return None
    same_inode = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":  # a waiter, not a holder
            continue
        try:
            major, minor, inode = fields[5].split(":")
            pid = int(fields[4])
            found = (int(major, 16), int(minor, 16)), int(inode)
        except ValueError:
            continue
        if found == (device, info.st_ino):
            return pid
        if found[1] == info.st_ino:  # overlay file systems show another device number
            same_inode.append(pid)
    return same_inode[0] if len(same_inode) == 1 else None
