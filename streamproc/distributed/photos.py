"""Photo collections as Ray tasks: a folder, pattern or list of photos is split into shards of
``photos_per_shard``, each a task retried like a file's.

A shard's outputs are written under temporary names and renamed, when the shard is done, into a
hidden folder beside the collection's first output (``out/.photos.streamproc-shards/``); a small
``NNNNN.done.json`` written by the driver after it marks the shard finished, so ``--resume`` runs
only the shards without one. When every shard is done, the driver joins their records, in order,
into the collection's outputs (written whole, then renamed) with the one ``streaming`` and one
final status line a plain run writes, and removes the folder. A photo's frame number is its place
in the collection, so the records equal a plain run's.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.capture.base import StatusListener
from streamproc.capture.images import ImageSource, end_state, image_files
from streamproc.config.settings import Settings, SourceSettings
from streamproc.core import rounding
from streamproc.core.atomic_files import atomic_writer
from streamproc.core.errors import ConfigError
from streamproc.core.frames import SourceState, StatusEvent
from streamproc.distributed.files import FileOutcome, run_staged
from streamproc.distributed.outputs import TEMP_MARK, file_template, final_outputs
from streamproc.distributed.worker_logs import setup_worker_logging
from streamproc.pipeline.run import RunReport
from streamproc.sinks.jsonl import record_line
from streamproc.sinks.kinds import sink_kind
from streamproc.sinks.records import status_record

# every record line starts with its type (records.py): each shard's status lines and closing
# summary are left out of the joined output, which gets one of each
STATUS_LINE_START = record_line({"type": "status"})[:-2]
SUMMARY_LINE_START = record_line({"type": "summary"})[:-2]


@dataclass(frozen=True)
class Shard:
    """Photos ``first`` .. ``first + len(files) - 1`` of the collection ``source_id``."""

    source_id: str
    number: int
    first: int
    files: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.source_id} photos {self.first}-{self.first + len(self.files) - 1}"


def plan_shards(source: SourceSettings, per_shard: int) -> list[Shard]:
    """The collection's photos, listed here (the driver), in shards of ``per_shard``."""
    files = [str(path) for path in image_files(source.url)]
    return [
        Shard(source.id or "", number, first, tuple(files[first : first + per_shard]))
        for number, first in enumerate(range(0, len(files), per_shard))
    ]


def check_outputs(settings: Settings) -> None:
    """Shards' outputs are joined: only those of kinds whose files can hold several runs' records
    (lines: JSON Lines), not one encoded stream (annotated video)."""
    for sink in settings.sinks:
        if file_template(sink) is not None and not sink_kind(sink.type).mixes_sources:
            raise ConfigError(
                f"{sink.type} output {file_template(sink)}: a distributed run splits photo collections into "
                "shards and cannot join such files: drop it, or run the photos without --workers/--cluster"
            )


def shard_folder(settings: Settings) -> Path | None:
    """Where the collection's finished shards wait (None: it has no file outputs)."""
    finals = final_outputs(settings, settings.sources[0].id or "")
    return finals[0].with_name(f".{settings.sources[0].id}{TEMP_MARK}-shards") if finals else None


def shard_outputs(settings: Settings, shard: Shard) -> list[Path]:
    """The shard's finished output files, one per file output of the collection."""
    folder = shard_folder(settings)
    if folder is None:
        return []
    finals = final_outputs(settings, shard.source_id)
    return [folder / f"{shard.number:05d}-{index}{final.suffix}" for index, final in enumerate(finals)]


def done_marker(settings: Settings, shard: Shard) -> Path | None:
    folder = shard_folder(settings)
    return folder / f"{shard.number:05d}.done.json" if folder else None


def process_shard(data: dict[str, Any], shard: Shard, index: int, board: Any, level: int) -> FileOutcome:
    """The task body, run on a worker: the shard's photos through the pipeline."""
    settings = Settings.model_validate(data)
    setup_worker_logging(level, shard.label)
    outcome = FileOutcome(index, shard.source_id, settings.sources[0].url)
    sources: list[ImageSource] = []

    photos = [Path(name) for name in shard.files]

    def part(
        _settings: Settings, source: SourceSettings, source_id: str, listener: StatusListener | None
    ) -> ImageSource:
        sources.append(ImageSource(source_id, source.url, listener, photos, shard.first))
        return sources[-1]

    def accept(report: RunReport) -> bool:  # broken photos are reported, the others' records kept
        return not report.sink_errors and not report.interrupted and (report.ok or bool(sources[0].broken))

    # outputs are checked against this shard's photos, not the whole collection listed again
    inputs = {shard.source_id: photos}
    run_staged(settings, outcome, board, shard_outputs(settings, shard), accept, part, inputs)
    if sources and outcome.error is None:
        outcome.broken = list(sources[0].broken)
    return outcome


def mark_done(settings: Settings, shard: Shard, outcome: FileOutcome) -> None:
    """On the driver, once the shard's outputs are final: ``--resume`` will skip it."""
    marker = done_marker(settings, shard)
    if marker is not None:
        with atomic_writer(marker) as stream:
            stream.write(json.dumps({"frames": outcome.frames, "broken": outcome.broken}).encode())


def finished(settings: Settings, shard: Shard, index: int) -> FileOutcome | None:
    """The outcome of a shard an earlier run finished (None: not finished)."""
    marker = done_marker(settings, shard)
    if marker is None or not marker.is_file():
        return None
    done = json.loads(marker.read_text())
    source = settings.sources[0]
    return FileOutcome(
        index, shard.source_id, source.url, frames=done["frames"], broken=done["broken"], skipped=True
    )


def join(settings: Settings, shards: list[Shard], outcomes: list[FileOutcome], seconds: float) -> FileOutcome:
    """The collection's outcome from its shards'; its outputs joined when every shard is done."""
    source = settings.sources[0]
    collection = FileOutcome(outcomes[0].index, shards[0].source_id, source.url, seconds=seconds)
    collection.frames = sum(outcome.frames for outcome in outcomes)
    failed = [(shard, o) for shard, o in zip(shards, outcomes, strict=True) if o.error is not None]
    if failed:
        shard, outcome = failed[0]
        more = f" (and {len(failed) - 1} more shards)" if len(failed) > 1 else ""
        collection.error = f"{shard.label}: {outcome.error}{more}; finished shards are kept for --resume"
        return collection
    collection.broken = [name for outcome in outcomes for name in outcome.broken]
    state, message = end_state(collection.frames, collection.broken)
    if state is SourceState.FAILED:
        collection.error = message
    collection.skipped = all(outcome.skipped for outcome in outcomes)
    _write_joined(
        settings,
        shards,
        time.time() - seconds,
        StatusEvent(collection.source_id, state, message, time.time()),
    )
    return collection


def _write_joined(settings: Settings, shards: list[Shard], began: float, end: StatusEvent) -> None:
    """Each file output: the shards' records in order, between one ``streaming`` and one final status
    line where the shards' outputs hold status lines, then one summary adding up the shards'."""
    source_id = settings.sources[0].id or ""
    for index, final in enumerate(final_outputs(settings, source_id)):
        parts = [part for shard in shards if (part := shard_outputs(settings, shard)[index]).is_file()]
        status = bool(parts) and _has_status(parts[0])
        start = StatusEvent(source_id, SourceState.STREAMING, "", began)
        summaries: list[dict[str, Any]] = []
        with atomic_writer(final) as stream:
            if status:
                stream.write(record_line(status_record(start)))
            for part in parts:
                with part.open("rb") as lines:
                    for line in lines:
                        if line.startswith(SUMMARY_LINE_START):
                            summaries.append(json.loads(line))
                        elif not line.startswith(STATUS_LINE_START):
                            stream.write(line)
            if status:
                stream.write(record_line(status_record(end)))
            if summaries:
                stream.write(record_line(added_up(summaries)))
    folder = shard_folder(settings)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def added_up(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary record for the shards' (each names every sink of its run, with its counts)."""
    sinks: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        for name, counts in summary["sinks"].items():
            total = sinks.setdefault(name, {"received": 0, "written": 0, "not_written": {}})
            total["received"] += counts["received"]
            total["written"] += counts["written"]
            for reason, frames in counts["not_written"].items():
                total["not_written"][reason] = total["not_written"].get(reason, 0) + frames
    return {"type": "summary", "wall_time": rounding.seconds(time.time()), "sinks": sinks}


def _has_status(part: Path) -> bool:
    """Whether the output writes status lines (JSON Lines with ``events``): each shard's has two."""
    with part.open("rb") as lines:
        return any(line.startswith(STATUS_LINE_START) for line in lines)
