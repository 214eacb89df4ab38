"""An H.264 MP4 that survives a hard stop: fragmented while it is written, a normal MP4 at the end.

While the run goes on, the video is written beside its target as NAME.partial.mp4, in fragments of
half a second flushed to disk as they are cut: after SIGKILL, a full disk or a crash, that file
plays up to its last fragment (what the encoder still held, well under two seconds, is lost). At a
clean close it is remuxed (no re-encoding) into an ordinary MP4 with its index at the front
(faststart, for players and browsers), still beside the target; the run then renames it over the
target (:func:`streamproc.files.settle`), unless the run failed and a file was there before.

A target that is not a regular file (``/dev/stdout``, a named pipe, a device) is written in place as a
fragmented MP4 stream, and never renamed over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streamproc.core.atomic_files import free_name, is_stream, partial_path
from streamproc.sinks.audio import AudioSpan, mux_with_audio

log = logging.getLogger(__name__)

FRAGMENT_US = 500_000  # fragment length: at most this much encoded video is unplayable after a crash
_FRAGMENTED = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": str(FRAGMENT_US),
    "flush_packets": "1",  # each fragment reaches the file when it is cut, not when a buffer fills
}


class CrashSafeMp4:
    """One H.264 stream in an MP4 at ``path``; see the module docstring."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction,
        options: dict[str, str],
        audio_from: str | None = None,
    ) -> None:
        self.path = path
        self.audio_from = audio_from  # a file whose audio the finished MP4 gets (streamproc.sinks.audio)
        self.in_place = is_stream(path)
        self.partial = path if self.in_place else partial_path(path)
        # the file is ours to close: after a write error (disk full) FFmpeg's close leaves its own
        # descriptor open, and a live run that retries would leak one per attempt
        self._file = open(self.partial, "wb", buffering=0)  # noqa: SIM115 - closed in finish/abandon
        try:
            self.container: Any = av.open(self._file, mode="w", format="mp4", options=_FRAGMENTED)
        except BaseException:
            self._file.close()
            raise
        stream: Any = self.container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # the encoder counts in the input's time base: its timestamps reach the file unchanged
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        stream.options = options
        self.stream = stream
        # Fragments carry no edit list: the muxer moves the whole timeline so that it starts at 0
        # (by the first packet's decode time: B-frames make it earlier than the first picture's).
        # The remux at the end moves it back, so the finished file has the input's timestamps.
        self._first_dts: int | None = None
        self._header_size: int | None = None  # the file's size once its header is written
        # seconds of the input's timeline the pictures cover: the span of audio the finished file gets
        self._start, self._end = float("inf"), 0.0
        self._interval = 1 / rate

    def write(self, frame: Any) -> None:
        for packet in self.stream.encode(frame):
            if self._first_dts is None:
                self._first_dts = packet.dts or 0
            if packet.pts is not None:  # x264 leaves durations out: a picture lasts one frame interval
                shown = packet.duration * packet.time_base if packet.duration else self._interval
                start = packet.pts * packet.time_base
                self._start, self._end = min(self._start, float(start)), max(self._end, float(start + shown))
            self.container.mux(packet)
            if self._header_size is None:  # the first mux writes the header; packets wait for a fragment
                self._header_size = self.partial.stat().st_size

    @property
    def holds_video(self) -> bool:
        """Whether a fragment of video, not just the header, has reached the file (a stream: the header)."""
        if self.in_place:
            return self._header_size is not None
        return self._header_size is not None and self.partial.stat().st_size > self._header_size

    def finish(self) -> tuple[Path, Path] | None:
        """Flush the encoder, then turn the fragments into a faststart MP4 in the partial file.
        Returns (partial, target) for the run to settle; None for a stream written in place."""
        self.write(None)
        self.container.close()
        self._file.close()
        self.container = self.stream = None  # the encoder's memory goes before the remux reads
        if self.in_place:
            return None
        finished = self.partial.with_name(f".{self.path.name}.finishing")
        try:
            audio = AudioSpan(self.audio_from, self._start, self._end) if self.audio_from else None
            _remux_faststart(self.partial, finished, self._first_dts or 0, audio)
            os.replace(finished, self.partial)
        finally:
            finished.unlink(missing_ok=True)
        return self.partial, self.path

    def abandon(self, aside: bool = False) -> Path | None:
        """Close without finishing: the partial file keeps what was written (it plays up to the
        failure), the target is untouched. ``aside``: move the partial to a free numbered name, so a
        new one can start, or delete it when it holds no video. Returns where the partial is."""
        try:
            if self.container is not None:  # None: closed by finish(), which failed afterwards
                self.container.close()
        except (av.error.FFmpegError, OSError) as exc:
            log.debug("closing %s after a failure: %s", self.partial, exc)
        self._file.close()
        kept = self.partial
        if self.in_place:
            return None
        if aside and not self.holds_video:  # nothing to play (e.g. a retry on a disk still full)
            self.partial.unlink(missing_ok=True)
            return None
        if aside:
            kept = free_name(self.partial)
            os.rename(self.partial, kept)
        log.warning("annotated video kept as %s (it plays up to the failure); %s untouched", kept, self.path)
        return kept


def _remux_faststart(source: Path, target: Path, shift: int, audio: AudioSpan | None = None) -> None:
    """Copy every packet of ``source``, ``shift`` ticks later, into a non-fragmented MP4 with the
    index in front (and an edit list where B-frames decode before the first picture shows), with
    the ``audio`` of its span (see streamproc.sinks.audio)."""
    with (
        av.open(str(source), options={"threads": "1"}) as reader,
        av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as writer,
    ):
        incoming = reader.streams.video[0]
        outgoing = writer.add_stream_from_template(incoming)
        mux_with_audio(writer, _shifted(reader.demux(incoming), outgoing, shift), audio)


def _shifted(packets: Iterator[Any], stream: Any, shift: int) -> Iterator[Any]:
    for packet in packets:
        if packet.dts is None or packet.pts is None:  # the demuxer's end-of-stream marker
            continue
        packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
        packet.stream = stream
        yield packet
