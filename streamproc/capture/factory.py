"""Picks the source class for a configured input: video file, photos, RTSP camera or local camera."""

from __future__ import annotations

from collections.abc import Callable

from streamproc.capture.base import Source, StatusListener
from streamproc.capture.camera import CameraSource
from streamproc.capture.file import FileSource
from streamproc.capture.images import ImageSource
from streamproc.capture.rtsp import RtspSource
from streamproc.capture.urls import SourceKind, camera_device, source_kind
from streamproc.config.settings import Settings, SourceSettings
from streamproc.core.errors import ConfigError

SourceFactory = Callable[[Settings, SourceSettings, str, StatusListener | None], Source]


def build_source(
    settings: Settings, source: SourceSettings, source_id: str, listener: StatusListener | None
) -> Source:
    """The source for one ``sources:`` entry, with the global live settings and its overrides."""
    kind = source_kind(source.url)
    if kind is not SourceKind.FILE and (source.realtime or source.loop):
        raise ConfigError(
            f"source {source_id}: realtime and loop apply to video files, not to {kind} sources"
        )
    if kind is SourceKind.IMAGES:
        return ImageSource(source_id, source.url, listener)
    if kind is SourceKind.RTSP:
        return RtspSource(source_id, source.url, settings.live_for(source), listener)
    if kind is SourceKind.CAMERA:
        device = camera_device(source.url)
        return CameraSource(source_id, device, settings.live_for(source), source.camera, listener)
    if source.video_track is not None and kind is not SourceKind.FILE:
        raise ConfigError(f"source {source_id}: video_track applies to video files, not to {kind} sources")
    return FileSource(
        source_id,
        source.url,
        listener,
        realtime=source.realtime,
        loop=source.loop,
        video_track=source.video_track,
    )
