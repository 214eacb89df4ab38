"""Decoding errors that FFmpeg logs from a decoder's own threads (slice and frame threads) count for
the source that opened the decoder. Hostile media made on the spot: H.264 with four slices per
picture (as many cameras send it), damaged in five places. (Over RTSP: test_rtsp_gstreamer.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest
from live_run import LiveRun

from streamproc.capture import ffmpeg_log
from streamproc.capture.ffmpeg_log import FfmpegLog
from streamproc.config.settings import Settings
from streamproc.inference.blazeface import BlazeFaceDetector

DAMAGE_AT = (0.2, 0.35, 0.5, 0.65, 0.8)  # fractions of the file, a keyframe interval or more apart
TS_PACKET = 188


def damaged_slices(path: Path, seconds: int = 4) -> Path:
    """640x360 H.264 at 25 fps in MPEG-TS, four slices per picture, damaged at ``DAMAGE_AT``: 100
    bytes of picture data inverted inside one TS packet each, so that the container stays whole and
    a server relays the damage as it is (a camera's encoder or memory going bad)."""
    source = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", str(seconds)]
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0", "-x264-params", "slices=4"]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *source, *encode, str(path)], check=True)
    data = bytearray(path.read_bytes())
    for at in DAMAGE_AT:
        start = int(len(data) * at) // TS_PACKET * TS_PACKET + 60  # past the TS and PES headers
        data[start : start + 100] = bytes(255 - byte for byte in data[start : start + 100])
    path.write_bytes(bytes(data))
    return path


def damaged_packets(path: Path, thread_type: str, threads: int, adopt: bool = True) -> tuple[int, set[int]]:
    """Error lines FFmpeg logged (and packets it refused) while decoding, and the threads adopted."""
    log = FfmpegLog()
    count = 0
    with av.open(str(path)) as container, log:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = thread_type, threads
        if adopt:
            log.open_decoder(stream.codec_context)
        workers = set(log._workers)
        for packet in container.demux(stream):
            try:
                packet.decode()
            except av.error.FFmpegError:
                count += 1
                log.take()
                continue
            count += log.take().errors
    log.close()
    assert not workers & set(ffmpeg_log._adopted), "closed: the thread ids are forgotten"
    return count, workers


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return damaged_slices(tmp_path_factory.mktemp("slices") / "slices.ts")


@pytest.mark.parametrize("thread_type", ["SLICE", "FRAME"])
def test_errors_logged_by_decoder_threads_count(clip: Path, thread_type: str) -> None:
    expected, none = damaged_packets(clip, "SLICE", 1)  # one thread: every line is the caller's own
    assert expected >= 2 * len(DAMAGE_AT) and not none
    seen, workers = damaged_packets(clip, thread_type, 2)
    assert workers, "FFmpeg started threads for the decoder"
    assert seen == expected, "the same errors, whichever thread met them"
    unadopted, _ = damaged_packets(clip, thread_type, 2, adopt=False)
    assert unadopted < expected, "the decoder's threads logged errors that only adoption catches"


@pytest.mark.parametrize("realtime", [False, True], ids=["frame-threads", "slice-threads"])
def test_file_sources_count_every_damaged_picture(
    clip: Path, blazeface: BlazeFaceDetector, realtime: bool
) -> None:
    """A file decodes with frame threads (and slice threads when paced like a camera). With slice
    threads, a picture damaged in a slice that a worker thread decoded went unreported (2 of 5 were
    counted); with frame threads each damaged picture shows twice (error lines, then the frame's
    corrupt flag a packet later) and counts once."""
    settings = Settings(sources=[{"url": str(clip), "id": "clip", "realtime": realtime}])
    with LiveRun(settings, blazeface) as run:
        report = run.wait_ended(timeout=30)
    assert report.ok, report.problems()
    stats = run.pipeline.stats_snapshot()["sources"]["clip"]
    assert stats["frames_decoded"] == 100 and stats["decode_errors"] == len(DAMAGE_AT), stats
