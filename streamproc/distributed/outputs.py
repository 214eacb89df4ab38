"""A file task's outputs: written under a temporary name beside the final one, renamed when done.

A worker killed mid-file leaves only its temporary files; the retry starts them over (same names),
so the final files never hold half a run or a record twice. Files are shared storage here: every
worker must see the output folders under the same paths (see docs/distributed.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from streamproc.config import JsonlSinkSettings, Settings, VideoSinkSettings
from streamproc.errors import ConfigError
from streamproc.sinks.base import source_path

FILE_SINKS = (JsonlSinkSettings, VideoSinkSettings)  # the sinks that write one file per source
TEMP_MARK = ".streamproc-part"


def check_per_file(settings: Settings) -> None:
    """Several files need one output each ('{source}' in the path): a retried file then rewrites
    only its own file, and ``--resume`` can tell which inputs are done."""
    if len(settings.sources) < 2:
        return
    for sink in settings.sinks:
        if isinstance(sink, FILE_SINKS) and "{source}" not in str(sink.path):
            raise ConfigError(
                f"{sink.type} output {sink.path}: a distributed run over several files writes one output "
                "per file: put '{source}' in the path, e.g. out/{source}.jsonl"
            )


def temporary_path(final: Path) -> Path:
    """``out/a.mp4`` -> ``out/.a.streamproc-part.mp4``: hidden, and the suffix still names the format."""
    return final.with_name(f".{final.stem}{TEMP_MARK}{final.suffix}")


def final_outputs(settings: Settings, source_id: str) -> list[Path]:
    """The files the file sinks of a one-source run write."""
    return [source_path(sink.path, source_id) for sink in settings.sinks if isinstance(sink, FILE_SINKS)]


def staged(settings: Settings, source_id: str) -> tuple[Settings, dict[Path, Path]]:
    """The settings with file outputs sent to their temporary names (stale ones removed), and the
    temporary -> final renames that commit them."""
    renames: dict[Path, Path] = {}
    sinks = []
    for sink in settings.sinks:
        if isinstance(sink, FILE_SINKS):
            final = source_path(sink.path, source_id)
            temporary = temporary_path(final)
            temporary.unlink(missing_ok=True)  # a killed attempt's leftovers: the JSONL sink appends
            renames[temporary] = final
            sink = sink.model_copy(update={"path": temporary})
        sinks.append(sink)
    return settings.model_copy(update={"sinks": sinks}), renames


def commit(renames: dict[Path, Path]) -> None:
    for temporary, final in renames.items():
        if temporary.exists():  # a sink writes nothing for a run without frames
            os.replace(temporary, final)


def discard(renames: dict[Path, Path]) -> None:
    for temporary in renames:
        temporary.unlink(missing_ok=True)


def complete(settings: Settings, source_id: str) -> bool:
    """Whether an earlier run finished this input: every file output exists (they appear only by
    rename, when whole). Inputs without file outputs are never complete."""
    finals = final_outputs(settings, source_id)
    return bool(finals) and all(path.is_file() for path in finals)
