"""Track thumbnails, embedded as data: URIs so the report opens from disk without other files.

A track's ``snapshot`` file (written by the snapshot sink) is used when it can be found; otherwise the
best view of the face is cropped from the recording given with ``--video``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from pathlib import Path

import av
import cv2
import numpy as np

from streamproc.core.errors import InputError
from streamproc.media.crops import context_crop, encode_jpeg
from streamproc.report.tracks import SourceTracks, Track

log = logging.getLogger(__name__)

THUMB_SIZE = 128  # longest side, pixels
MARGIN = 0.25  # context around a cropped face box, as a fraction of its size


def video_map(specs: Iterable[str], source_ids: list[str]) -> dict[str, Path]:
    """``--video`` values: 'SOURCE=PATH', or 'PATH' for the source named like the file (or the only one)."""
    videos: dict[str, Path] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        source_id, path = (name, Path(rest)) if sep and name in source_ids else (None, Path(spec))
        if not path.is_file():
            raise InputError(f"video {path} given with --video does not exist")
        if source_id is None:
            source_id = path.stem if path.stem in source_ids or len(source_ids) != 1 else source_ids[0]
        if source_id not in source_ids:
            raise InputError(
                f"--video {spec}: the results have no source '{source_id}'; "
                f"write SOURCE={path} with one of: {', '.join(source_ids)}"
            )
        videos[source_id] = path
    return videos


def attach_thumbnails(sources: list[SourceTracks], base_dirs: list[Path], videos: dict[str, Path]) -> None:
    """Fill ``Track.thumbnail`` from snapshot files, else from the source's video."""
    for source in sources:
        for track in source.tracks:
            if track.snapshot:
                track.thumbnail = _from_file(track.snapshot, base_dirs)
        missing = [t for t in source.tracks if t.thumbnail is None and t.best_box is not None]
        if missing and source.source_id in videos:
            _crop_from_video(videos[source.source_id], missing)


def thumbnail_uri(image: np.ndarray, box: list[float] | None = None) -> str:
    """A small JPEG data: URI of ``image`` (BGR), cropped to ``box`` plus a margin when given."""
    if box is not None:
        crop = context_crop(image, box, MARGIN)
        if crop is None:
            raise ValueError(f"the box {box} lies outside the picture")
        image = crop
    scale = THUMB_SIZE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image, 85)).decode("ascii")


def _from_file(name: str, base_dirs: list[Path]) -> str | None:
    """Relative snapshot paths are looked up beside each results file, then in the current folder."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [base / path for base in base_dirs] + [path]
    for candidate in candidates:
        if candidate.is_file():
            image = cv2.imread(str(candidate))
            if image is not None and image.size:
                return thumbnail_uri(image)
            log.warning("snapshot %s is not a readable image", candidate)
            return None
    log.warning("snapshot %s not found (looked beside the results and in the current folder)", name)
    return None


def _crop_from_video(path: Path, tracks: list[Track]) -> None:
    """Decode ``path`` once, cropping each track's best view by frame index (or media time)."""
    by_index = {t.best_frame: t for t in tracks if t.best_frame is not None}
    by_pts = [t for t in tracks if t.best_frame is None and t.best_pts is not None]
    wanted = len(tracks)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            half_frame = 0.5 / float(stream.average_rate or 25)
            time_base = stream.time_base
            for index, frame in enumerate(container.decode(stream)):
                pts = float(frame.pts * time_base) if frame.pts is not None and time_base else None
                matches = [by_index[index]] if index in by_index else []
                matches += [t for t in by_pts if pts is not None and abs(pts - t.best_pts) <= half_frame]  # type: ignore[operator]
                if matches:
                    image = frame.to_ndarray(format="bgr24")
                    for track in matches:
                        track.thumbnail = thumbnail_uri(image, track.best_box)
                    wanted -= len(matches)
                    if wanted <= 0:
                        break
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"video {path} cannot be read for thumbnails: {exc}") from None
