"""Output safety: no output may overwrite an input or another output, and existing files are handled
as the user chose (``existing: append | replace | refuse``, ``--overwrite`` on the command line).

Files a failing run must not destroy are written aside (:func:`streamproc.core.atomic_files.partial_path`) and
moved over the target only when they are complete (:func:`streamproc.core.atomic_files.commit`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from streamproc.capture.inputs import STDIN
from streamproc.capture.urls import SourceKind, source_kind
from streamproc.core.atomic_files import partial_path
from streamproc.core.errors import OutputError
from streamproc.sinks.base import source_path
from streamproc.sinks.kinds import sink_kind

Existing = Literal["append", "replace", "refuse"]


class OutputConflictError(OutputError):
    """An output that would destroy an input, another output or a file the user asked to keep."""

    exit_code = 2


def input_files(sources: Sequence[Any], source_ids: Sequence[str]) -> dict[str, Path | None]:
    """Source id -> the file it reads (None for cameras, streams and stdin)."""
    files = {}
    for source, source_id in zip(sources, source_ids, strict=True):
        is_file = source_kind(source.url) is SourceKind.FILE and source.url != STDIN
        files[source_id] = Path(source.url) if is_file else None
    return files


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: same resolved path, or (hard or symbolic links) same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_outputs(sinks: Iterable[Any], inputs: Mapping[str, Path | None]) -> None:
    """Refuse, before anything is opened, outputs that resolve to an input, to another output of the
    same run, or to an existing file when ``existing`` is ``refuse``.

    ``sinks``: sink settings (those with a ``path`` are files); ``inputs``: source id -> its file (None
    for cameras and streams).
    """
    taken: dict[Path, str] = {}
    for sink in sinks:
        template = getattr(sink, "path", None)
        if template is None:
            continue
        what = f"{sink.type} output {template}"
        per_source = "{source}" in str(template)
        kind = sink_kind(sink.type)
        if not per_source and not kind.mixes_sources and len(inputs) > 1:
            raise OutputConflictError(f"{what} cannot hold several sources: put '{{source}}' in the path")
        for source_id in inputs if per_source else list(inputs)[:1]:
            path = source_path(template, source_id)
            _check_one(path, what, sink.existing, inputs, taken)
            taken[path] = what
            if kind.writes_aside or sink.existing == "replace":
                _check_leftover(partial_path(path))


def _check_one(
    path: Path, what: str, existing: Existing, inputs: Mapping[str, Path | None], taken: Mapping[Path, str]
) -> None:
    for source_id, source in inputs.items():
        if source is not None and _same_file(path, source):
            raise OutputConflictError(
                f"{what} is {path}, the input of source {source_id}: writing it would destroy the"
                " recording; choose another output path"
            )
    for other, other_what in taken.items():
        if _same_file(path, other):
            raise OutputConflictError(f"{what} and {other_what} both write {path}: give each its own path")
    if existing == "refuse" and path.exists():
        raise OutputConflictError(
            f"{what}: {path} exists and existing outputs are refused (--overwrite refuse): move it, or"
            " use --overwrite replace / append"
        )
    if existing == "append" and not _holds_json_lines(path):
        raise OutputConflictError(
            f"{what}: {path} exists and is not a JSON Lines file: appending would damage it; choose"
            " another path"
        )


def _holds_json_lines(path: Path) -> bool:
    """Whether a file can be appended to with records: missing, empty, or starting with one."""
    if not path.is_file():  # a pipe or a terminal (--events /dev/stdout): reading it would block
        return True
    try:
        with open(path, "rb") as stream:
            start = stream.read(64).lstrip()
    except OSError:  # missing (fine), a folder or unreadable (the sink's own checks say so)
        return True
    return not start or start.startswith(b"{")


def _check_leftover(partial: Path) -> None:
    """A partial file is all that is left of an earlier run that did not finish: never overwrite it."""
    if partial.exists() and partial.stat().st_size:  # empty: a run that failed at start-up
        raise OutputConflictError(
            f"{partial} exists: it holds what an earlier run that did not finish wrote; rename or"
            " delete it to run again"
        )


def check_photo_outputs(sinks: Iterable[Any], sources: Sequence[Any], source_ids: Sequence[str]) -> None:
    """Refuse an ``images`` output that would write a photo over itself (its folder is the input's)."""
    from streamproc.capture.images import image_files
    from streamproc.sinks.images import output_path

    for sink in sinks:
        if sink.type != "images":
            continue
        for source, source_id in zip(sources, source_ids, strict=True):
            if source_kind(source.url) is not SourceKind.IMAGES:
                continue
            for photo in image_files(source.url):
                if _same_file(output_path(sink.dir, source_id, photo), photo):
                    raise OutputConflictError(
                        f"images output {sink.dir} would write {photo} over itself, the input of source"
                        f" {source_id}: choose another folder"
                    )
