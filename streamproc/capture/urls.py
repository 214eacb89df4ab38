"""What kind of input a source url names, and how to show it without its password."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

# user[:password]@ in any scheme://... url, wherever it appears in a message
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]*@")
_CAMERA_INDEX = re.compile(r"camera:(?P<index>\d+)")


class SourceKind(StrEnum):
    FILE = "file"
    RTSP = "rtsp"
    CAMERA = "camera"
    IMAGES = "images"


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
_GLOB_CHARS = re.compile(r"[*?\[]")


def source_kind(url: str) -> SourceKind:
    """rtsp:// and rtsps:// are cameras on the network; /dev/videoN, /dev/v4l/... and camera:N are
    local cameras; a folder, a glob pattern or a file with an image suffix are photos; anything else
    is a video file."""
    lowered = url.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        return SourceKind.RTSP
    if _CAMERA_INDEX.fullmatch(lowered) or lowered.startswith(("/dev/video", "/dev/v4l/")):
        return SourceKind.CAMERA
    if is_glob(url) or Path(url).suffix.lower() in IMAGE_SUFFIXES or Path(url).is_dir():
        return SourceKind.IMAGES
    return SourceKind.FILE


def is_glob(url: str) -> bool:
    """A pattern such as shots/*.jpg (a file whose name holds * or [ is itself, not a pattern)."""
    return bool(_GLOB_CHARS.search(url)) and not Path(url).exists()


def camera_device(url: str) -> Path:
    """The V4L2 device node of a local camera url: camera:2 -> /dev/video2."""
    match = _CAMERA_INDEX.fullmatch(url.lower())
    return Path(f"/dev/video{match['index']}") if match else Path(url)


def redact(text: str) -> str:
    """Hide user names and passwords of urls in a message: rtsp://***@host/path."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def default_source_id(url: str) -> str:
    """A readable id from the url: the file stem, the camera device, or the RTSP path (host if none)."""
    kind = source_kind(url)
    if kind is SourceKind.RTSP:
        parts = urlsplit(url)
        path = parts.path.strip("/").replace("/", "-")
        return path or (parts.hostname or "camera")
    if kind is SourceKind.CAMERA:
        return camera_device(url).name
    if kind is SourceKind.IMAGES and is_glob(url):  # shots/*.jpg -> shots
        fixed = [part for part in Path(url).parts if not _GLOB_CHARS.search(part)]
        return Path(*fixed).name if fixed else "images"
    return Path(url).stem or Path(url).resolve().name or "source"
