"""What kind of input a source url names, how to read its login, and how to show it without one.

Passwords often hold characters a url reserves (``@ # / ? space '``). Users paste them as they are,
so a login is split off at the LAST ``@`` that is followed by a host (``user:Pa@ss#7@cam/x`` is user
``user``, password ``Pa@ss#7``, host ``cam``) and percent-encoded again before FFmpeg sees it. A url
whose login cannot be told apart from its host is refused with a line that never repeats it.

Shown urls come from :func:`display_url`; messages go through :func:`streamproc.core.credentials.redact`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote, unquote

from streamproc.core.credentials import MASK, redact, register_secret
from streamproc.core.errors import InputError

_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")
# host: a name, IPv4 or [IPv6], an optional port, then the path, query or nothing
_HOST = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~%-]*)(?::(?P<port>[0-9]*))?(?=[/?#]|$)")
_CAMERA_INDEX = re.compile(r"camera:(?P<index>\d+)")


class SourceKind(StrEnum):
    FILE = "file"
    RTSP = "rtsp"
    CAMERA = "camera"
    IMAGES = "images"


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
LIST_SUFFIXES = frozenset({".txt", ".list"})  # a text file naming photos, one path a line
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ParsedUrl:
    """A ``scheme://[user[:password]@]host[:port][/path]`` url, login decoded."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    rest: str  # path, query and fragment as written

    @property
    def safe(self) -> str:
        """The url with its login replaced by ``***`` (shown to people)."""
        login = f"{MASK}@" if self.user is not None else ""
        return f"{self.scheme}://{login}{self._hostport}{self.rest}"

    @property
    def encoded(self) -> str:
        """The url with user and password percent-encoded, as FFmpeg expects (never shown)."""
        login = ""
        if self.user is not None:
            password = "" if self.password is None else ":" + quote(self.password, safe="")
            login = quote(self.user, safe="") + password + "@"
        return f"{self.scheme}://{login}{self._hostport}{self.rest}"

    @property
    def _hostport(self) -> str:
        return self.host + ("" if self.port is None else f":{self.port}")


def parse_url(url: str) -> ParsedUrl:
    """Split a network url; raises InputError (without the url) when its login is ambiguous."""
    scheme_match = _SCHEME.match(url)
    if scheme_match is None:
        raise InputError("not a url: expected scheme://host/path")
    scheme = scheme_match["scheme"]
    rest = url[scheme_match.end() :]
    login, hostpart = None, rest
    if "@" in rest:  # an @ in a path must be written %40: any bare @ is taken to end a login
        at = _last_at_before_host(rest)
        if at is None:
            raise InputError(
                f"the {scheme}:// url's user name or password cannot be read: percent-encode its special"
                " characters (@ as %40, # as %23, / as %2F, ? as %3F, space as %20, ' as %27)"
            )
        login, hostpart = rest[:at], rest[at + 1 :]
    host = _HOST.match(hostpart)
    if host is None or (host["port"] is not None and not host["port"].isdigit()):
        raise InputError(
            f"the {scheme}:// url has an invalid host or port: write {scheme}://host[:port]/path"
        )
    user = password = None
    if login is not None:
        user, colon, secret = login.partition(":")
        user, password = unquote(user), (unquote(secret) if colon else None)
        register_secret(password)
    port = int(host["port"]) if host["port"] else None
    return ParsedUrl(scheme, user, password, host["host"], port, hostpart[host.end() :])


def _last_at_before_host(rest: str) -> int | None:
    """Index of the last @ followed by a valid host[:port] and then a path or the end; an empty host
    (``user@/path``) only if there is no other choice, so that the missing host is reported."""
    empty = None
    for index in range(len(rest) - 1, -1, -1):
        if rest[index] != "@":
            continue
        host = _HOST.match(rest, index + 1)
        if host is None or (host["port"] is not None and not host["port"].isdigit()):
            continue
        if host["host"]:
            return index
        empty = index if empty is None else empty
    return empty


def display_url(url: str) -> str:
    """How a source's url is shown: network urls without their login (all hidden if unreadable)."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return redact(url)
    try:
        return parse_url(url).safe
    except InputError:
        return f"{scheme['scheme']}://{MASK}"


def source_kind(url: str) -> SourceKind:
    """rtsp:// and rtsps:// are cameras on the network; /dev/videoN, /dev/v4l/... and camera:N are
    local cameras; a folder, a glob pattern, a file with an image suffix or a list of photos
    (``.txt``, ``.list``) are photos; anything else is a video file."""
    lowered = url.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        return SourceKind.RTSP
    if _CAMERA_INDEX.fullmatch(lowered) or lowered.startswith(("/dev/video", "/dev/v4l/")):
        return SourceKind.CAMERA
    if is_glob(url) or Path(url).suffix.lower() in IMAGE_SUFFIXES | LIST_SUFFIXES or Path(url).is_dir():
        return SourceKind.IMAGES
    return SourceKind.FILE


def is_glob(url: str) -> bool:
    """A pattern such as shots/*.jpg (a file whose name holds * or [ is itself, not a pattern)."""
    return bool(_GLOB_CHARS.search(url)) and not Path(url).exists()


def camera_device(url: str) -> Path:
    """The V4L2 device node of a local camera url: camera:2 -> /dev/video2."""
    match = _CAMERA_INDEX.fullmatch(url.lower())
    return Path(f"/dev/video{match['index']}") if match else Path(url)


def default_source_id(url: str) -> str:
    """A readable id from the url: the file stem, the camera device, or the RTSP path (host if none).
    Bytes of a file name that are not UTF-8 are written as escapes (cam\\xe9ra): ids go into JSON,
    MQTT topics and file names, which need text."""
    return os.fsencode(_source_id(url)).decode("utf-8", "backslashreplace")


def _source_id(url: str) -> str:
    kind = source_kind(url)
    if kind is SourceKind.RTSP:
        try:
            parsed = parse_url(url)
        except InputError:
            return "camera"  # the source itself reports the bad url
        path = parsed.rest.split("?", 1)[0].split("#", 1)[0].strip("/").replace("/", "-")
        return path or parsed.host or "camera"
    if kind is SourceKind.CAMERA:
        return camera_device(url).name
    if kind is SourceKind.IMAGES and is_glob(url):  # shots/*.jpg -> shots
        fixed = [part for part in Path(url).parts if not _GLOB_CHARS.search(part)]
        return Path(*fixed).name if fixed else "images"
    return Path(redact(url)).stem or Path(url).resolve().name or "source"
