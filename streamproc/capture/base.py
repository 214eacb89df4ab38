"""What every source shares: its states, status reports and capture thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from streamproc.capture.buffer import FrameBuffer
from streamproc.capture.urls import display_url
from streamproc.core.credentials import redact
from streamproc.core.frames import Frame, SourceState, StatusEvent, StreamInfo

CAPTURE_THREAD_PREFIX = "capture-"
log = logging.getLogger(__name__)


StatusListener = Callable[[StatusEvent], None]
FramePreparer = Callable[[Frame], Frame]  # returns the frame to buffer (maybe without its pixels)


class Source:
    """A capture thread that decodes one input into its :class:`FrameBuffer`.

    Subclasses implement :meth:`open` (fail fast, in the caller's thread, with an InputError)
    and :meth:`_capture` (the decode loop, run in the thread).
    """

    live = False  # a camera or stream (runs until stopped) rather than a file
    join_grace: float | None = None  # seconds to wait for the thread at shutdown; None: until it ends

    def __init__(self, source_id: str, url: str, listener: StatusListener | None = None) -> None:
        self.source_id = source_id
        self.url = display_url(url)  # what messages, events and the API show: no login
        self.state = SourceState.CONNECTING
        self.error: str | None = None
        self.message = ""
        self.frames_decoded = 0
        self.failures = 0  # live sources: connection attempts that failed or broke
        self.packets_lost = 0  # network sources: RTP packets that never arrived
        self.decode_errors = 0  # packets that could not be decoded or gave a patched-up picture
        self.size: tuple[int, int] | None = None  # latest picture size (width, height), once known
        self._listener = listener
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer: FrameBuffer | None = None
        self._prepare: FramePreparer | None = None

    def open(self) -> StreamInfo:
        raise NotImplementedError

    def _capture(self, buffer: FrameBuffer) -> None:
        raise NotImplementedError

    def bind(self, buffer: FrameBuffer) -> None:
        """Attach the buffer this source fills."""
        self._buffer = buffer

    @property
    def buffer(self) -> FrameBuffer | None:
        return self._buffer

    def start(self, prepare: FramePreparer | None = None) -> None:
        """Start the capture thread; ``prepare`` runs on each frame there and returns what is buffered."""
        assert self._buffer is not None, "bind() a buffer first"
        self._prepare = prepare
        name = f"{CAPTURE_THREAD_PREFIX}{self.source_id}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the capture thread to finish; frames already buffered are still processed."""
        self._stop.set()
        if self._buffer is not None:
            self._buffer.close()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def emit(self, frame: Frame, wait: bool = False) -> bool:
        """Prepare a decoded frame and hand it to the buffer; False once the buffer is closed.
        ``wait``: wait for room even in a drop-oldest buffer."""
        if self._prepare is not None:
            frame = self._prepare(frame)
        assert self._buffer is not None
        return self._buffer.put(frame, wait)

    def set_state(self, state: SourceState, message: str = "") -> None:
        if state is self.state and not message:
            return
        message = redact(message)
        self.state = state
        self.message = message  # why it is in this state (a reconnecting camera: the last failure)
        if state is SourceState.FAILED:
            self.error = message
        level = logging.WARNING if state in (SourceState.FAILED, SourceState.RECONNECTING) else logging.INFO
        log.log(level, "source %s: %s%s", self.source_id, state.value, f" ({message})" if message else "")
        if self._listener is not None:
            width, height = self.size or (None, None)
            self._listener(StatusEvent(self.source_id, state, message, time.time(), width, height))

    def _run(self) -> None:
        assert self._buffer is not None
        try:
            self._capture(self._buffer)
        except Exception as exc:  # a source must never take the process down
            log.debug("source %s crashed", self.source_id, exc_info=True)
            self.set_state(SourceState.FAILED, f"unexpected error: {exc}")
        finally:
            self._buffer.close()
            if self.state not in (SourceState.FAILED, SourceState.STOPPED):
                self.set_state(SourceState.STOPPED)


def capture_threads_running() -> int:
    """Capture threads still running, e.g. left inside a camera's connect after ``join_grace``."""
    return sum(1 for thread in threading.enumerate() if thread.name.startswith(CAPTURE_THREAD_PREFIX))


def join_sources(sources: Iterable[Source]) -> None:
    """Wait for capture threads after ``stop``: files until they end, live sources for at most their
    ``join_grace``, counted from one common start so many cameras do not add up."""
    start = time.monotonic()
    for source in sources:
        if source.join_grace is None:
            source.join()
        else:
            source.join(max(0.0, start + source.join_grace - time.monotonic()))
