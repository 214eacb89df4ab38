"""A file task's outputs: written under a temporary name, made final only when the file is done.

``distributed.outputs: shared`` (storage every node sees under the same paths): the temporary file
lies beside the final one and is renamed. A worker killed mid-file leaves only its temporary files;
the retry starts them over (same names), so final files never hold half a run or a record twice.
``driver``: the worker writes into a folder of its own, returns the bytes with the task's result and
the driver writes them (atomically); nothing is written where the driver does not see it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from streamproc.config.settings import Settings
from streamproc.core.atomic_files import atomic_writer
from streamproc.core.errors import ConfigError
from streamproc.sinks.base import source_path
from streamproc.sinks.kinds import sink_kind

TEMP_MARK = ".streamproc-part"


def file_template(sink: Any) -> Path | None:
    """The path of a ``sinks:`` entry whose kind writes a file per source ('{source}' names it);
    None for the other kinds."""
    return Path(sink.path) if sink_kind(sink.type).files_per_source else None


def check_per_file(settings: Settings) -> None:
    """Several files need one output each ('{source}' in the path): a retried file then rewrites
    only its own file, and ``--resume`` can tell which inputs are done."""
    if len(settings.sources) < 2:
        return
    for sink in settings.sinks:
        template = file_template(sink)
        if template is not None and "{source}" not in str(template):
            raise ConfigError(
                f"{sink.type} output {template}: a distributed run over several files writes one output "
                "per file: put '{source}' in the path, e.g. out/{source}.jsonl"
            )


def temporary_path(final: Path) -> Path:
    """``out/a.mp4`` -> ``out/.a.streamproc-part.mp4``: hidden, and the suffix still names the format."""
    return final.with_name(f".{final.stem}{TEMP_MARK}{final.suffix}")


def final_outputs(settings: Settings, source_id: str) -> list[Path]:
    """The files the file sinks of a one-source run write."""
    templates = [file_template(sink) for sink in settings.sinks]
    return [source_path(template, source_id) for template in templates if template is not None]


def staged(
    settings: Settings, source_id: str, folder: Path | None = None, finals: list[Path] | None = None
) -> tuple[Settings, dict[Path, Path]]:
    """The settings with file outputs sent to temporary names (beside the final ones, or in
    ``folder``; stale ones removed), and the temporary -> final renames that commit them. The final
    paths are ``finals`` (one per file output, in order) or the sinks' own."""
    targets = iter(finals if finals is not None else final_outputs(settings, source_id))
    renames: dict[Path, Path] = {}
    sinks = []
    for number, sink in enumerate(settings.sinks):
        if file_template(sink) is not None:
            final = next(targets)
            temporary = folder / f"{number}{final.suffix}" if folder else temporary_path(final)
            temporary.unlink(missing_ok=True)  # a killed attempt's leftovers: the JSONL sink appends
            renames[temporary] = final
            sink = sink.model_copy(update={"path": temporary})
        sinks.append(sink)
    return settings.model_copy(update={"sinks": sinks}), renames


def commit(renames: dict[Path, Path]) -> None:
    for temporary, final in renames.items():
        if temporary.exists():  # a sink writes nothing for a run without frames
            os.replace(temporary, final)


def collect(renames: dict[Path, Path]) -> dict[str, bytes]:
    """``driver`` outputs: each final path with the bytes the worker wrote for it."""
    return {str(final): temporary.read_bytes() for temporary, final in renames.items() if temporary.exists()}


def write_returned(outputs: dict[str, bytes]) -> None:
    """On the driver: write what a worker returned, each file whole or not at all."""
    for path, data in outputs.items():
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(final) as stream:
            stream.write(data)


def discard(renames: dict[Path, Path]) -> None:
    for temporary in renames:
        temporary.unlink(missing_ok=True)


def complete(settings: Settings, source_id: str) -> bool:
    """Whether an earlier run finished this input: every file output exists (they appear only by
    rename, when whole). Inputs without file outputs are never complete."""
    finals = final_outputs(settings, source_id)
    return bool(finals) and all(path.is_file() for path in finals)
