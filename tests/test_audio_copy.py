"""The annotated video keeps the input's audio: copied packet for packet (never re-encoded), up to the
end of the video, on clips with real AAC (and PCM) tracks that FFmpeg's own encoders write."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path
from typing import Any

import av
from conftest import CliRunner

from streamproc.sinks.mp4 import CrashSafeMp4


def make_clip(path: Path, video_s: float, audio: list[tuple[str, float]]) -> Path:
    """A 320x240 H.264 clip of ``video_s`` seconds with one tone track per (codec, seconds)."""
    command = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=320x240:rate=25:d={video_s}",
    ]
    for _, seconds in audio:
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}"]
    command += ["-map", "0:v"]
    for index, (codec, _) in enumerate(audio, start=1):
        command += ["-map", f"{index}:a", f"-c:a:{index - 1}", codec]
    subprocess.run([*command, "-c:v", "libx264", "-preset", "ultrafast", str(path)], check=True, timeout=60)
    return path


def audio_packets(path: Path) -> list[list[tuple[Any, ...]]]:
    """Per audio track: (pts, dts, duration, bytes) of every packet, in the stream's time base."""
    with av.open(str(path)) as container:
        tracks: list[list[tuple[Any, ...]]] = [[] for _ in container.streams.audio]
        positions = {stream.index: i for i, stream in enumerate(container.streams.audio)}
        for packet in container.demux(*container.streams.audio) if tracks else ():
            if packet.dts is not None:
                tracks[positions[packet.stream.index]].append(
                    (packet.pts, packet.dts, packet.duration, bytes(packet))
                )
        return tracks


def durations(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {
            stream.type: float(stream.duration * stream.time_base)
            for stream in container.streams
            if stream.duration is not None
        }


def test_the_annotated_video_carries_the_inputs_aac_track(tmp_path: Path, run_cli: CliRunner) -> None:
    clip = make_clip(tmp_path / "phone.mp4", 2.0, [("aac", 2.0)])
    annotated, silent = tmp_path / "annotated.mp4", tmp_path / "silent.mp4"
    result = run_cli("run", clip, "--out-video", annotated, "--no-progress")
    assert result.returncode == 0, result.stderr
    (source_audio,) = audio_packets(clip)
    assert len(source_audio) > 90, "two seconds of AAC at 48 kHz: about 94 packets"
    assert audio_packets(annotated) == [source_audio], "every packet copied, unchanged, same timestamps"
    assert "copying the audio of" in result.stderr and "(aac) into the finished video" in result.stderr
    assert durations(annotated) == durations(clip)

    result = run_cli("run", clip, "--out-video", silent, "--no-progress", "--no-audio")
    assert result.returncode == 0, result.stderr
    assert audio_packets(silent) == [] and durations(silent)["video"] == durations(clip)["video"]


def test_audio_ends_with_the_video_and_what_mp4_cannot_hold_is_named(
    tmp_path: Path, run_cli: CliRunner
) -> None:
    """A .mov with 1 s of video, 2 s of PCM and 2 s of AAC: the AAC is copied up to the video's end,
    the PCM (which MP4 holds only re-encoded) is left out with a warning."""
    clip = make_clip(tmp_path / "camera.mov", 1.0, [("pcm_s16le", 2.0), ("aac", 2.0)])
    annotated = tmp_path / "annotated.mp4"
    result = run_cli("run", clip, "--out-video", annotated, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "audio track 1 of" in result.stderr and "(pcm_s16le) is not copied" in result.stderr
    _pcm, aac = audio_packets(clip)
    with av.open(str(clip)) as container:
        time_base = container.streams.audio[1].time_base
    before_the_end = [packet for packet in aac if packet[1] * time_base < 1.0]
    assert 40 < len(before_the_end) < len(aac)
    assert audio_packets(annotated) == [before_the_end]


def test_a_video_of_part_of_the_input_gets_the_audio_of_that_part(tmp_path: Path) -> None:
    """A file that starts mid-run (a new file after a write error, a size change) covers seconds 1-2
    of the input: it gets the audio packets that overlap them, with their own timestamps."""
    clip = make_clip(tmp_path / "phone.mp4", 2.0, [("aac", 2.0)])
    target = tmp_path / "part.mp4"
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        rate, time_base = stream.average_rate, stream.time_base
        mp4 = CrashSafeMp4(target, 320, 240, time_base, rate, {"preset": "ultrafast"}, str(clip))
        for frame in itertools.islice(container.decode(stream), 25, None):  # 1.00 s to 2.00 s
            picture = frame.reformat(format="yuv420p")
            picture.pts, picture.time_base = frame.pts, time_base
            mp4.write(picture)
    finished = mp4.finish()
    assert finished is not None
    target = finished[0]  # the finished file, before the run settles it under its name
    (aac,) = audio_packets(clip)
    overlapping = [
        packet for packet in aac if (packet[1] + packet[2]) / 48000 >= 1.0 and packet[1] / 48000 < 2.0
    ]
    assert 40 < len(overlapping) < len(aac) - 40
    (copied,) = audio_packets(target)
    assert [packet[2:] for packet in copied] == [packet[2:] for packet in overlapping]  # duration, bytes
    # an MP4 edit list counts in milliseconds: a track starting at 0.98 s reads back within 1 ms of it
    assert all(abs(ours[0] - theirs[0]) <= 48 for ours, theirs in zip(copied, overlapping, strict=True))
