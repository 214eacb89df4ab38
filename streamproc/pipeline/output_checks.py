"""Output safety: no output may overwrite an input or another output, and existing files are handled
as the user chose (``existing: append | replace | refuse``, ``--overwrite`` on the command line).

Files a failing run must not destroy are written aside (:func:`streamproc.core.atomic_files.partial_path`)
and moved over the target only when they are complete (:func:`streamproc.core.atomic_files.settle`).
Outputs that are not regular files (devices, named pipes, ``/dev/stdout``) are written in place as
streams and never replaced; sockets and folders are refused. Every output file is locked for the run.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from streamproc.capture.factory import source_type
from streamproc.capture.urls import SourceKind, source_kind
from streamproc.core.atomic_files import is_stream, partial_path
from streamproc.core.errors import OutputError
from streamproc.core.locks import OutputLocks
from streamproc.sinks.base import source_path
from streamproc.sinks.kinds import sink_kind

Existing = Literal["append", "replace", "refuse"]


class OutputConflictError(OutputError):
    """An output that would destroy an input, another output or a file the user asked to keep."""

    exit_code = 2


Inputs = Mapping[str, Sequence[Path]]


def input_files(sources: Sequence[Any], source_ids: Sequence[str]) -> dict[str, tuple[Path, ...]]:
    """Source id -> the files it reads: one video, every photo of a folder or pattern; none for
    cameras, streams and stdin."""
    files = {}
    for source, source_id in zip(sources, source_ids, strict=True):
        files[source_id] = source_type(source.url).input_files(source.url)
    return files


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: same resolved path, or (hard or symbolic links) same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_outputs(sinks: Iterable[Any], inputs: Inputs, lock: bool = True) -> OutputLocks:
    """Refuse, before anything is opened, outputs that resolve to an input, to another output of the
    same run, to a folder or socket, to an existing file when ``existing`` is ``refuse``, or to a
    file another run is writing; then lock every output file for the run (the caller releases).

    ``sinks``: sink settings (those with a ``path`` are files); ``inputs``: source id -> its files.
    ``lock=False``: checked only (a distributed camera group: its job's driver holds the locks, and
    the job's groups append to the same files).
    """
    taken: dict[Path, str] = {}
    outputs = list(_output_paths(sinks, inputs))
    for sink, path, what in outputs:
        _check_one(path, what, sink.existing, inputs, taken)
        taken[path] = what
    locks = OutputLocks()
    try:
        for sink, path, what in outputs if lock else []:
            aside = sink_kind(sink.type).writes_aside or sink.existing == "replace"
            if not is_stream(path):  # a stream is written in place: nothing beside it, nothing renamed
                _lock(locks, path, what, aside)
    except BaseException:
        locks.release()
        raise
    return locks


def _lock(locks: OutputLocks, path: Path, what: str, aside: bool) -> None:
    """Lock the target (if it exists) and the file written meanwhile; refuse an earlier run's leftover."""
    written = partial_path(path) if aside else path
    if os.path.isfile(path):
        locks.lock(path, what)
    locks.lock(written, what)
    if aside:
        _check_leftover(written)


def _output_paths(sinks: Iterable[Any], inputs: Inputs) -> Iterator[tuple[Any, Path, str]]:
    """(sink settings, output path, how to name it) for every file output, '{source}' expanded."""
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
            yield sink, source_path(template, source_id), what


def _check_one(path: Path, what: str, existing: Existing, inputs: Inputs, taken: Mapping[Path, str]) -> None:
    _check_kind(path, what)
    for source_id, files in inputs.items():
        if any(_same_file(path, source) for source in files):
            raise OutputConflictError(
                f"{what} is {path}, the input of source {source_id}: writing it would destroy it;"
                " choose another output path"
            )
    for other, other_what in taken.items():
        if _same_file(path, other):
            raise OutputConflictError(f"{what} and {other_what} both write {path}: give each its own path")
    if is_stream(path):
        return  # a device or pipe is written to, never replaced: nothing to refuse or to damage
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


def _check_kind(path: Path, what: str) -> None:
    """Folders and sockets cannot be outputs: said now, not after the whole input is processed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing (created later) or unreadable (the sink's own checks say so)
    if stat.S_ISDIR(mode):
        raise OutputConflictError(f"{what}: {path} is a folder: give a file name")
    if stat.S_ISSOCK(mode):
        raise OutputConflictError(f"{what}: {path} is a socket: outputs are files, named pipes or devices")


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
