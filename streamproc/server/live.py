"""Live views on the event loop: one task encodes each new frame of a watched source once (in a
worker thread, at most ``live_fps`` a second) and wakes every viewer of it; a viewer costs a
coroutine and its socket buffer, and is forgotten when it hangs up."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from streamproc.core.frames import FrameResult
from streamproc.sinks.live import LiveFrame, LiveViewSink

BOUNDARY = "streamproc-frame"
POLL_S = 0.5  # a viewer with no new frame gets the current one again (browsers show a part late)


def frame_headers(frame: LiveFrame) -> dict[str, str]:
    headers = {"X-Frame-Index": str(frame.index), "Cache-Control": "no-store"}
    if frame.pts is not None:
        headers["X-Frame-Pts"] = f"{frame.pts:.6f}"
    return headers


class LiveHub:
    """The latest encoded frame per watched source, shared by all its viewers."""

    def __init__(self, live: LiveViewSink, fps: float) -> None:
        self.live = live
        self.interval = 1.0 / fps
        self._frames: dict[str, tuple[FrameResult, LiveFrame]] = {}
        self._changed: dict[str, asyncio.Event] = {}

    async def run(self, closing: threading.Event) -> None:
        """Encode new frames of watched sources until ``closing``; started with the server."""
        while not closing.is_set():
            for source_id, viewers in self.live.viewers().items():
                result = self.live.latest(source_id)
                known = self._frames.get(source_id)
                if viewers <= 0 or result is None or (known is not None and known[0] is result):
                    continue
                frame = await asyncio.to_thread(self.live.jpeg, result)
                self._frames[source_id] = (result, frame)
                event = self._changed.pop(source_id, None)
                if event is not None:
                    event.set()
            await asyncio.sleep(self.interval)

    async def next_frame(self, source_id: str, shown: LiveFrame | None, timeout: float) -> LiveFrame | None:
        """A frame newer than ``shown``, or after ``timeout`` the current one (None before any)."""
        known = self._frames.get(source_id)
        if known is not None and known[1] is not shown:
            return known[1]
        event = self._changed.setdefault(source_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        known = self._frames.get(source_id)
        return known[1] if known is not None else None

    async def mjpeg(self, source_id: str, closing: threading.Event) -> AsyncIterator[bytes]:
        """The multipart stream of one viewer; the viewer count drops when it ends or is cancelled."""
        with self.live.watching(source_id):
            yield f"--{BOUNDARY}\r\n".encode()
            shown: LiveFrame | None = None
            while not closing.is_set():
                frame = await self.next_frame(source_id, shown, POLL_S)
                if frame is None:
                    continue  # nothing processed yet
                extra = "".join(f"{name}: {value}\r\n" for name, value in frame_headers(frame).items())
                head = f"Content-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n{extra}\r\n"
                yield head.encode() + frame.jpeg + f"\r\n--{BOUNDARY}\r\n".encode()
                shown = frame
