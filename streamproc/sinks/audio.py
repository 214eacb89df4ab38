"""The input's audio, copied (never re-encoded) into a video we write, packet for packet.

Any writer of an output video whose frames keep the input's timestamps (the annotated video, a
redacted copy) adds the audio when it finishes its file: :func:`mux_with_audio` interleaves the
video packets it is given with the input's audio packets by time, over the span the video covers,
so a run stopped early, or a file that starts mid-run, gets the audio of what it shows. Audio an
MP4 cannot hold without re-encoding (PCM, for one) is left out with a warning; an input that
cannot be read again (a stream, stdin, a file looped) has no audio to copy.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

log = logging.getLogger(__name__)

# audio codecs FFmpeg's MP4 muxer takes as they are
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "mp2", "opus", "ac3", "eac3", "alac", "flac"})


@dataclass(frozen=True)
class AudioSpan:
    """The audio a video gets: that of the media file ``path`` from ``start`` to ``end`` seconds of
    its timeline (the span the video's pictures cover)."""

    path: str
    start: float
    end: float


def mux_with_audio(writer: Any, video: Iterable[Any], audio: AudioSpan | None) -> None:
    """Mux ``video``'s packets (their ``stream`` already set to one of ``writer``'s) and every audio
    track of ``audio`` MP4 can hold, the packets that overlap its span, interleaved by time."""
    if audio is None:
        for packet in video:
            writer.mux(packet)
        return
    try:
        reader = av.open(audio.path, options={"threads": "1"})
    except (av.error.FFmpegError, OSError) as exc:
        log.warning("the audio of %s is not copied: it cannot be read again (%s)", audio.path, exc)
        reader = None
    try:
        tracks = _audio_tracks(reader, writer, audio.path) if reader is not None else {}
        packets = _audio_packets(reader, tracks, audio) if tracks else iter(())
        for *_, packet in heapq.merge(_timed(video, 0), _timed(packets, 1)):
            writer.mux(packet)
    finally:
        if reader is not None:
            reader.close()


def _audio_tracks(reader: Any, writer: Any, source: str) -> dict[int, Any]:
    """The output stream for each of the input's audio tracks that MP4 holds, by input index."""
    tracks, copied = {}, []
    for stream in reader.streams.audio:
        codec = stream.codec_context.name
        if codec in MP4_AUDIO_CODECS:
            tracks[stream.index] = writer.add_stream_from_template(stream)
            copied.append(codec)
        else:
            log.warning(
                "audio track %d of %s (%s) is not copied: MP4 holds it only re-encoded",
                stream.index,
                source,
                codec,
            )
    if copied:
        log.info("copying the audio of %s (%s) into the finished video", source, ", ".join(copied))
    return tracks


def _audio_packets(reader: Any, tracks: dict[int, Any], span: AudioSpan) -> Iterator[Any]:
    """The input's audio packets that overlap ``span`` (an AAC priming packet that ends where the
    video starts included), each re-addressed to its output stream. A read error ends the audio
    there (the video goes on), with a warning saying where."""
    inputs = [stream for stream in reader.streams.audio if stream.index in tracks]
    copied, done = 0.0, set()
    try:
        for packet in reader.demux(inputs):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            start = float(packet.dts * packet.time_base)
            if start + float(packet.duration * packet.time_base) < span.start:
                continue
            if start >= span.end:
                done.add(packet.stream.index)
                if len(done) == len(inputs):
                    return
                continue  # another track is still behind
            packet.stream = tracks[packet.stream.index]
            copied = max(copied, start)
            yield packet
    except av.error.FFmpegError as exc:
        log.warning("the audio of %s is copied up to %.2f s only: %s", span.path, copied, exc)


def _timed(packets: Iterable[Any], order: int) -> Iterator[tuple[Fraction, int, int, Any]]:
    """(decode time, stream order, sequence, packet): what heapq.merge interleaves by; video goes
    first on ties, and packets of one stream keep their order."""
    for sequence, packet in zip(itertools.count(), packets, strict=False):
        yield Fraction(packet.dts or 0) * packet.time_base, order, sequence, packet
