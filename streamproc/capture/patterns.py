"""File name patterns (``shots/*.jpg``, ``'d/**/*.jpg'``) expanded with a bounded walk.

Python's ``glob`` follows links to folders without remembering where it has been: two links to
``.`` inside the walked folder make ``**`` expand for ever (2^depth paths), and Ctrl-C waits for
it. Here ``**`` walks each folder once (by device and inode, links included), and in Python
between system calls, so Ctrl-C stops it at once. Names starting with a dot are skipped, as
``glob`` does; names that are not UTF-8 are kept as the file system gives them.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from streamproc.core.errors import InputError

RECURSIVE = "**"
MAX_FOLDERS = 100_000  # a pattern walking more folders is a mistake (``/**/*.jpg``): said, not waited for


def expand(pattern: str) -> list[Path]:
    """The existing paths a pattern names (unsorted)."""
    parts = pattern.split("/")
    if RECURSIVE not in parts:  # no recursion: glob never follows a folder twice
        return [Path(name) for name in glob.glob(pattern)]
    fixed = next(index for index, part in enumerate(parts) if glob.has_magic(part))
    root = "/".join(parts[:fixed]) or ("/" if pattern.startswith("/") else ".")
    matches = _regex("/".join(parts[fixed:]))
    found = []
    for relative in _walk(root):
        if matches.fullmatch(relative):
            found.append(Path(root, relative) if parts[:fixed] or pattern.startswith("/") else Path(relative))
    return found


def _walk(root: str) -> list[str]:
    """Paths below ``root`` (relative, '/'-separated), each folder visited once, hidden ones skipped."""
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    pending = [("", root)]
    while pending:
        relative, folder = pending.pop()
        try:
            status = os.stat(folder)
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name, reverse=True)
        except OSError:  # unreadable or vanished: glob skips those too
            continue
        if (status.st_dev, status.st_ino) in seen:
            continue
        seen.add((status.st_dev, status.st_ino))
        if len(seen) > MAX_FOLDERS:
            raise InputError(f"pattern below {root} walks more than {MAX_FOLDERS} folders: narrow it")
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = f"{relative}{entry.name}"
            found.append(path)
            if entry.is_dir():  # follows links: a link to a folder seen before is not entered again
                pending.append((path + "/", entry.path))
    return found


def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` ('/'-separated, ``**`` for any folders) as a regular expression over relative paths."""
    parts = pattern.split("/")
    out = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == RECURSIVE:
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_component(part) + ("" if last else "/"))
    return re.compile("".join(out), re.DOTALL)


def _component(part: str) -> str:
    """One name pattern: ``*`` and ``?`` stay within the name, ``[...]`` is a set of characters."""
    out, index = [], 0
    while index < len(part):
        char = part[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := part.find("]", index + 2)) != -1:
            inner = part[index + 1 : end]
            negate = inner.startswith("!")
            out.append("[" + ("^" if negate else "") + re.escape(inner[negate:]).replace(r"\-", "-") + "]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)
