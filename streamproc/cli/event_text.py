"""What ``streamproc events`` prints: an event from the broker checked, then made into one safe line.

Anything can publish to a broker, so nothing it sends reaches the terminal raw: control characters
(escape sequences, newlines, bidirectional overrides) are shown escaped (``\\x1b``), long values are
cut, and a message that is not a plausible event is refused with the reason, never a traceback.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import OrderedDict
from datetime import datetime
from typing import Any

MAX_FIELD = 120  # characters of one printed value; a broker may send megabytes
MAX_FIELDS = 40  # key=value pairs after the headline; a broker may send thousands
MAX_REMEMBERED = 4096  # open tracks (and sources) a long-running subscriber keeps numbers for
_IN_THE_HEADLINE = {"type", "source_id", "source", "track_id", "wall_time"}
_ID_FIELDS = {"event_id"}  # <track id>.<seq>: as long as the track id, shown with --full-ids only


class Malformed(ValueError):
    """A message that is not an event streamproc could have published; says why."""


def parse_event(payload: bytes) -> dict[str, Any]:
    """The event in ``payload``, or Malformed naming what is wrong with it."""
    try:
        event = json.loads(payload, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, NaN, a 5000-digit number
        raise Malformed(f"not JSON ({_cut(str(exc), 60)})") from None
    if not isinstance(event, dict):
        raise Malformed(f"a JSON {type(event).__name__}, not an object")
    if not isinstance(event.get("type"), str):
        raise Malformed("no text 'type'")
    if not isinstance(event.get("source_id", event.get("source")), str):
        raise Malformed("no text 'source'")
    track_id = event.get("track_id")
    if track_id is not None and (isinstance(track_id, bool) or not isinstance(track_id, str | int)):
        raise Malformed("'track_id' is neither text nor a number")
    wall_time = event.get("wall_time")
    if wall_time is not None and _clock_text(wall_time) is None:
        raise Malformed(f"'wall_time' {safe_text(repr(wall_time))} is not a time")
    return event


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _clock_text(value: Any) -> str | None:
    """HH:MM:SS.mmm local time of epoch seconds ``value``; None when it is not a usable time."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value).strftime("%H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):  # beyond what the platform's clock can name
        return None


def safe_text(value: object) -> str:
    """``value`` as text with every control or format character escaped, cut to MAX_FIELD."""
    text = _cut(str(value), MAX_FIELD)
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unicodedata.category(char) in ("Cc", "Cf") else char
        for char in text
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TrackNumbers:
    """Short track numbers, 1, 2, 3... per source, in the order this subscriber first sees them.

    A number is forgotten when its track ends (the counter goes on), and the least recently seen
    tracks and sources are forgotten beyond MAX_REMEMBERED, so a subscriber left running for months,
    or fed made-up ids, stays small."""

    def __init__(self) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._open: OrderedDict[tuple[str, str], int] = OrderedDict()

    def number(self, source: str, track_id: str, ended: bool = False) -> int:
        key = (source, track_id)
        count = self._counts.pop(source, 0)  # put back last: the most recently seen source
        found = self._open.pop(key, None)
        if found is None:
            found = count = count + 1
        self._counts[source] = count
        if not ended:
            self._open[key] = found
        for remembered in (self._open, self._counts):
            while len(remembered) > MAX_REMEMBERED:
                remembered.popitem(last=False)
        return found


def readable(event: dict[str, Any], numbers: TrackNumbers | None = None) -> str:
    """One line: time, source, type, track, then the event's other plain fields as key=value.

    With ``numbers``, the track is its short per-source number and the long ids are left out;
    without, the full track id and event id are shown."""
    when = _clock_text(event.get("wall_time")) or "--:--:--.---"
    source = str(event.get("source_id", event.get("source")))
    line = f"{when}  {safe_text(source)}  {safe_text(event['type']):<6}"
    track_id = event.get("track_id")
    if track_id is not None:
        ended = event["type"] == "end"
        shown = track_id if numbers is None else numbers.number(source, str(track_id), ended)
        line += f"  track {safe_text(shown)}"
    hidden = _IN_THE_HEADLINE | (_ID_FIELDS if numbers is not None else set())
    details = [
        f"{safe_text(key)}={safe_text(round(value, 3) if isinstance(value, float) else value)}"
        for key, value in event.items()
        if key not in hidden and isinstance(value, str | int | float | bool)
    ]
    more = [f"(+{len(details) - MAX_FIELDS} more fields)"] if len(details) > MAX_FIELDS else []
    return "  ".join([line, *details[:MAX_FIELDS], *more])
