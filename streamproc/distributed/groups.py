"""Naming sources and packing live ones into worker groups."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from streamproc.capture.factory import source_type
from streamproc.config.settings import Settings, SourceSettings
from streamproc.distributed.outputs import file_template
from streamproc.pipeline.build import source_id_for
from streamproc.sinks.kinds import sink_kind


def with_absolute_paths(settings: Settings) -> Settings:
    """Input files and photos, outputs, snapshots and models as absolute paths: workers do not share the
    driver's working directory, so relative paths mean what they mean where the command was run."""
    sources = [
        source.model_copy(update={"url": os.path.abspath(source.url)})
        if source_type(source.url).on_disk
        else source
        for source in settings.sources
    ]
    sinks = [
        sink.model_copy(update={"path": template.absolute()}) if (template := file_template(sink)) else sink
        for sink in settings.sinks
    ]
    snapshots = settings.snapshots.model_copy(update={"dir": settings.snapshots.dir.absolute()})
    models_dir = settings.models_dir.absolute() if settings.models_dir else None
    update = {"sources": sources, "sinks": sinks, "snapshots": snapshots, "models_dir": models_dir}
    return settings.model_copy(update=update)


def with_ids(sources: Sequence[SourceSettings]) -> list[SourceSettings]:
    """Each source with the id a plain run over all of them would give it (so outputs match)."""
    taken: set[str] = set()
    named = []
    for source in sources:
        source_id = source_id_for(source, taken)
        taken.add(source_id)
        named.append(source.model_copy(update={"id": source_id}))
    return named


def camera_groups(sources: Sequence[SourceSettings], per_worker: int) -> dict[str, list[SourceSettings]]:
    """Sources with a ``group`` go to that group; the others are packed ``per_worker`` to a group
    named group-1, group-2, ... in the order listed."""
    groups: dict[str, list[SourceSettings]] = {}
    loose = [source for source in sources if source.group is None]
    for source in sources:
        if source.group is not None:
            groups.setdefault(source.group, []).append(source)
    for start in range(0, len(loose), per_worker):
        groups[f"group-{start // per_worker + 1}"] = loose[start : start + per_worker]
    return groups


def group_settings(settings: Settings, group: str, sources: list[SourceSettings]) -> dict[str, Any]:
    """What one group's worker runs, as ``model_dump()`` (secrets kept) for the trip to the worker:
    its sources; MQTT availability and client id of its own; no stats of its own on {prefix}/stats
    (the driver publishes the whole system's there)."""
    mqtt = settings.mqtt.model_copy(
        update={
            "instance": group,
            "client_id": f"{settings.mqtt.client_id}-{group}" if settings.mqtt.client_id else None,
        }
    )
    sinks = [
        sink.model_copy(update={"stats_interval": 0.0}) if sink_kind(sink.type).publishes_stats else sink
        for sink in settings.sinks
    ]
    http = settings.http.model_copy(update={"enabled": False})  # the driver serves the whole system
    update = {"sources": sources, "mqtt": mqtt, "sinks": sinks, "progress": False, "http": http}
    return settings.model_copy(update=update).model_dump()
