"""Every kind of source, declared once: the url kind it serves (``capture/urls.source_kind`` tells
a url's kind: ``rtsp://`` cameras, local cameras, photos, and anything else for the file source,
which refuses other url schemes when it opens), how it is made, and what it is. The builder, the
output checks and distributed runs read these declarations; a new kind is its module, its url rule
and one :func:`register_source` line. A kind's module is imported only when a run opens one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamproc.capture.base import Source, StatusListener
from streamproc.capture.inputs import STDIN
from streamproc.capture.urls import SourceKind, camera_device, source_kind
from streamproc.config.settings import Settings, SourceSettings
from streamproc.core.errors import ConfigError

SourceFactory = Callable[[Settings, SourceSettings, str, StatusListener | None], Source]


@dataclass(frozen=True)
class SourceType:
    """One kind of source. ``make(run, entry, source_id, listener)`` builds it from the run's
    settings and its ``sources:`` entry."""

    kind: SourceKind
    make: SourceFactory
    reads_file: bool = False  # a video file of this machine: realtime and loop apply, ids from the file
    on_disk: bool = False  # its url is a path of this machine (made absolute for Ray workers)
    live: bool = False  # runs until stopped (a distributed run puts it on an actor, not a task)
    input_files: Callable[[str], tuple[Path, ...]] = lambda url: ()  # what outputs must never overwrite


SOURCE_TYPES: dict[SourceKind, SourceType] = {}  # add with register_source, read with source_type


def register_source(source: SourceType) -> None:
    if source.kind in SOURCE_TYPES:
        raise ValueError(f"source kind {source.kind!r} is registered twice")
    SOURCE_TYPES[source.kind] = source


def source_type(url: str) -> SourceType:
    """The kind of source a url names; one without a registered kind is refused at start-up."""
    kind = source_kind(url)
    found = SOURCE_TYPES.get(kind)
    if found is None:
        raise ConfigError(f"{kind} sources are not registered: {url} cannot be opened")
    return found


def reads_file(url: str) -> bool:
    """Whether a url names a file of this machine (not a camera, a stream or photos)."""
    return source_type(url).reads_file


def build_source(
    settings: Settings, source: SourceSettings, source_id: str, listener: StatusListener | None
) -> Source:
    """The source for one ``sources:`` entry, with the global live settings and its overrides."""
    found = source_type(source.url)
    if not found.reads_file and (source.realtime or source.loop):
        raise ConfigError(
            f"source {source_id}: realtime and loop apply to video files, not to {found.kind} sources"
        )
    return found.make(settings, source, source_id, listener)


def _file(run: Settings, entry: SourceSettings, source_id: str, listener: StatusListener | None) -> Source:
    from streamproc.capture.file import FileSource

    return FileSource(
        source_id,
        entry.url,
        listener,
        realtime=entry.realtime,
        loop=entry.loop,
        video_track=entry.video_track,
    )


def _images(run: Settings, entry: SourceSettings, source_id: str, listener: StatusListener | None) -> Source:
    from streamproc.capture.images import ImageSource

    return ImageSource(source_id, entry.url, listener)


def _rtsp(run: Settings, entry: SourceSettings, source_id: str, listener: StatusListener | None) -> Source:
    from streamproc.capture.rtsp import RtspSource

    return RtspSource(source_id, entry.url, run.live_for(entry), listener)


def _camera(run: Settings, entry: SourceSettings, source_id: str, listener: StatusListener | None) -> Source:
    from streamproc.capture.camera import CameraSource

    device = camera_device(entry.url)
    return CameraSource(source_id, device, run.live_for(entry), entry.camera, listener)


def _the_file(url: str) -> tuple[Path, ...]:
    return () if url == STDIN else (Path(url),)


def _the_photos(url: str) -> tuple[Path, ...]:
    from streamproc.capture.images import image_files

    return tuple(image_files(url))


register_source(SourceType(SourceKind.FILE, _file, reads_file=True, on_disk=True, input_files=_the_file))
register_source(SourceType(SourceKind.IMAGES, _images, on_disk=True, input_files=_the_photos))
register_source(SourceType(SourceKind.RTSP, _rtsp, live=True))
register_source(SourceType(SourceKind.CAMERA, _camera, live=True))
