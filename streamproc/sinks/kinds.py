"""Every kind of sink, declared once: the settings ``type`` it answers to, how it is made, and what it
can do. The builder, the output checks and distributed runs read these declarations instead of
lists of names, so a new kind is its module plus one :func:`register_sink` line (and its settings
class in the ``sinks:`` union of :mod:`streamproc.config.settings`).

A kind's module is imported only when a run makes one (MQTT's client library alone adds ~45 ms to
every start-up otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamproc.config.settings import (
    ImagesSinkSettings,
    JsonlSinkSettings,
    MqttSinkSettings,
    Settings,
    VideoSinkSettings,
)
from streamproc.core.errors import ConfigError
from streamproc.sinks.base import Sink, StatsProvider

if TYPE_CHECKING:
    from pydantic import BaseModel

SinkMaker = Callable[[Any, Settings, StatsProvider | None], Sink]


@dataclass(frozen=True)
class SinkKind:
    """One kind of sink. ``make(settings, run, stats)`` builds it from its ``sinks:`` entry, the run's
    settings and the run's live numbers (for sinks that publish them)."""

    name: str  # the ``type`` of its ``sinks:`` entries
    settings: type[BaseModel]
    make: SinkMaker
    files_per_source: bool = False  # writes a file per source: '{source}' in its path names them
    mixes_sources: bool = True  # one file may hold several sources' results (False: one per source)
    writes_aside: bool = False  # writes under a partial name until the file is complete, always
    reports_track_ends: bool = False  # a distributed run's driver opens it too, to end lost tracks
    publishes_stats: bool = False  # publishes the run's numbers (a worker group leaves that to the driver)


SINK_KINDS: dict[str, SinkKind] = {}  # by type; add with register_sink, read with sink_kind


def register_sink(kind: SinkKind) -> None:
    """Make a kind of sink known; a type registered twice is a programming error."""
    if kind.name in SINK_KINDS:
        raise ValueError(f"sink type {kind.name!r} is registered twice")
    SINK_KINDS[kind.name] = kind


def sink_kind(type_name: str) -> SinkKind:
    """The kind a ``sinks:`` entry names; an unregistered one is refused at start-up."""
    kind = SINK_KINDS.get(type_name)
    if kind is None:
        known = ", ".join(sorted(SINK_KINDS))
        raise ConfigError(f"sink type '{type_name}' is not registered (known: {known})")
    return kind


def make_sink(settings: Any, run: Settings, stats: StatsProvider | None = None) -> Sink:
    """The sink for one ``sinks:`` entry, made by the kind its ``type`` names."""
    return sink_kind(settings.type).make(settings, run, stats)


def _jsonl(settings: JsonlSinkSettings, run: Settings, stats: StatsProvider | None) -> Sink:
    from streamproc.sinks.jsonl import JsonlSink

    return JsonlSink(settings, run.shutdown_grace)


def _video(settings: VideoSinkSettings, run: Settings, stats: StatsProvider | None) -> Sink:
    from streamproc.sinks.video import VideoSink

    return VideoSink(settings, run.redact.lookback)


def _images(settings: ImagesSinkSettings, run: Settings, stats: StatsProvider | None) -> Sink:
    from streamproc.sinks.images import ImagesSink

    return ImagesSink(settings)


def _mqtt(settings: MqttSinkSettings, run: Settings, stats: StatsProvider | None) -> Sink:
    from streamproc.sinks.mqtt import MqttSink

    return MqttSink(settings, run.mqtt, stats, run.shutdown_grace)


register_sink(SinkKind("jsonl", JsonlSinkSettings, _jsonl, files_per_source=True, reports_track_ends=True))
register_sink(
    SinkKind(
        "video", VideoSinkSettings, _video, files_per_source=True, mixes_sources=False, writes_aside=True
    )
)
register_sink(SinkKind("mqtt", MqttSinkSettings, _mqtt, reports_track_ends=True, publishes_stats=True))
register_sink(SinkKind("images", ImagesSinkSettings, _images))
