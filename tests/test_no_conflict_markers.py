"""Nothing half-merged lands: no tracked file keeps a merge's conflict markers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import REPO

# built, not written out, so this file does not match itself; a bare separator line counts only in a
# file that also has an opening marker (seven '=' alone can underline a heading)
_OPENING = re.compile("^" + "<" * 7 + " .*$", re.M)
_SIDES = "|".join(re.escape(mark * 7) for mark in "<>|")
_MARKER = re.compile(f"^(?:{_SIDES}) .*$|^{'=' * 7}$", re.M)


def conflict_markers(root: Path) -> list[str]:
    """``path:line: text`` for every conflict marker line in the files git tracks under ``root``."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout.split(
        b"\0"
    )
    found = []
    for name in filter(None, names):
        path = root / name.decode()
        if not path.is_file():
            continue  # deleted in the work tree, not yet in the index
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (models, media)
        text = data.decode("utf-8", "replace")
        if not _OPENING.search(text):
            continue
        for match in _MARKER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{name.decode()}:{line}: {match.group(0)[:40]}")
    return found


def test_no_tracked_file_has_conflict_markers() -> None:
    assert conflict_markers(REPO) == []


def test_a_conflict_marker_is_found(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    half_merged = ["one", "<" * 7 + " HEAD", "two", "=" * 7, "three", ">" * 7 + " main", ""]
    (tmp_path / "notes.md").write_text("\n".join(half_merged))
    (tmp_path / "table.md").write_text("title\n=======\n\nsetext underline, not a conflict\n")
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    assert [line.split(":")[:2] for line in conflict_markers(tmp_path)] == [
        ["notes.md", "2"],
        ["notes.md", "4"],
        ["notes.md", "6"],
    ]
