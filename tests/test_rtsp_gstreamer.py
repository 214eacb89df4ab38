"""Cameras as people have them: GStreamer's RTSP server (TCP-interleaved and UDP, Basic and Digest
auth, H.265, AAC and G.711 tracks, a size change, 1080p, lost packets, restarts) and rtsp-server-perl
(UDP only), read with default settings. One server of each kind per module; short clips."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import av
import pytest
import yaml
from conftest import CliRunner, read_records
from gst_server import AAC_FROM_TS, G711, GstServer, Publisher, file_mount, live_h264
from live_run import LIVE, LiveRun, wait_until
from rtsp_proxy import RtspProxy
from rtsp_server import RtspServer
from test_ffmpeg_log import DAMAGE_AT, damaged_slices

from streamproc.capture import live as live_module
from streamproc.capture.base import SourceState
from streamproc.config.settings import Settings
from streamproc.inference.blazeface import BlazeFaceDetector

pytestmark = pytest.mark.slow  # real RTSP servers (GStreamer, rtsp-server-perl)

PASSWORD = "Pa@ss#7/x y'z"  # every character a url reserves, unescaped in the urls below
AUTO = {**LIVE, "transport": "auto"}
GOP_S = 0.5  # keyframe interval of the camera clip (-g 12 at 25 fps)
log = logging.getLogger(__name__)
BOUND = LIVE["reconnect"]["max"] * (1 + LIVE["reconnect"]["jitter"])  # the longest backoff delay


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True)


def _clip(path: Path, size: str, codec: str = "libx264", seconds: float = 2, offset: float = 0) -> Path:
    """testsrc2 at 10 fps, a keyframe each second, as MPEG-TS."""
    source = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10", "-t", seconds]
    encode = ["-c:v", codec, "-preset", "ultrafast", "-g", 10, "-pix_fmt", "yuv420p"]
    _ffmpeg(*source, *encode, "-output_ts_offset", offset, path)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, sample_video: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gst-media")
    camera = folder / "camera.mp4"  # the sample as a camera sends it: a keyframe every 0.5 s, B-frames
    _ffmpeg("-i", sample_video, "-c:v", "libx264", "-preset", "ultrafast", "-bf", 2, "-g", 12, camera)
    first, second = (
        _clip(folder / "a.ts", "320x240", seconds=1),
        _clip(folder / "b.ts", "480x272", seconds=1, offset=1),
    )
    resize = folder / "resize.ts"
    resize.write_bytes(first.read_bytes() + second.read_bytes())
    camera_ts = folder / "camera.ts"
    _ffmpeg("-i", camera, "-c", "copy", camera_ts)
    return {
        "camera": camera,
        "camera_ts": camera_ts,
        "resize": resize,
        "h265": _clip(folder / "h265.ts", "320x240", "libx265"),
        "hd": _clip(folder / "hd.ts", "1920x1080", seconds=1),
        "slices": damaged_slices(folder / "slices.ts", seconds=3),
    }


@pytest.fixture(scope="module")
def gst(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Iterator[dict[str, GstServer]]:
    """Servers: open (both transports), TCP only, Digest, Basic, lossy (every 40th packet lost)."""
    workdir = tmp_path_factory.mktemp("gst")
    publishers = [Publisher(workdir, media["camera"], audio=True).start() for _ in range(5)]
    ports = [publisher.port for publisher in publishers]
    login = ["--user", "viewer", "--password", PASSWORD]
    servers = {
        "open": GstServer(
            workdir,
            live={"cam": live_h264(ports[0], AAC_FROM_TS), "g711": live_h264(ports[1], G711)},
            files={
                name: file_mount(media[name], "h265" if name == "h265" else "h264")
                for name in ("h265", "resize", "hd", "slices")
            },
        ),
        "tcp": GstServer(workdir, ["--protocols", "tcp"], live={"cam": live_h264(ports[2])}),
        "digest": GstServer(workdir, ["--auth", "digest", *login], live={"cam": live_h264(ports[3])}),
        "basic": GstServer(workdir, ["--auth", "basic", *login], live={"cam": live_h264(ports[4])}),
        "lossy": GstServer(workdir, ["--drop-every", "40"], files={"cam": file_mount(media["camera_ts"])}),
    }
    for server in servers.values():
        server.start()
    servers["publishers"] = publishers  # type: ignore[assignment]
    yield servers
    for server in servers.values():
        if isinstance(server, GstServer):
            server.kill()
    for publisher in publishers:
        publisher.kill()


def _pts_ok(run: LiveRun, source_id: str) -> list[float]:
    pts = [item.pts for item in run.collector.of(source_id)]
    assert all(value is not None for value in pts), "every frame has a media time, the first included"
    assert all(b > a for a, b in pairwise(pts)), "media time strictly increases"
    return pts  # type: ignore[return-value]


def test_default_settings_stream_from_gstreamer_and_rtsp_server_perl(
    gst: dict[str, GstServer], rtsp_server: RtspServer, sample_video: Path, blazeface: BlazeFaceDetector
) -> None:
    rtsp_server.publish("cam", sample_video)
    urls = [gst["open"].url("cam"), gst["open"].url("g711"), gst["tcp"].url("cam"), rtsp_server.url("cam")]
    settings = Settings(sources=[{"url": url, "id": f"s{i}"} for i, url in enumerate(urls)], live=AUTO)
    with LiveRun(settings, blazeface) as run:
        wait_until(lambda: all(len(run.collector.of(f"s{i}")) >= 40 for i in range(4)), 30, "40 frames each")
        stats = run.pipeline.stats_snapshot()["sources"]
    for index, via in enumerate(["TCP", "TCP", "TCP", "UDP"]):
        source_id = f"s{index}"
        streaming = run.messages(source_id, SourceState.STREAMING)[0]
        assert streaming.startswith("640x360 at 25 fps") and streaming.endswith(f"over {via}"), streaming
        pts = _pts_ok(run, source_id)
        spacing = sorted(b - a for a, b in pairwise(pts))[len(pts) // 2]
        assert spacing == pytest.approx(0.04, abs=0.005), "the stream's clock, not arrival times"
        seen = run.collector.of(source_id)
        assert sum(len(item.boxes) > 0 for item in seen) >= 0.9 * len(seen)
        assert stats[source_id]["frames_dropped"] == 0, "the start-up burst is taken whole"
    assert run.report is not None and run.report.ok


def test_h265_size_change_1080p_and_lost_packets(
    gst: dict[str, GstServer], blazeface: BlazeFaceDetector, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setattr(live_module, "WARN_INTERVAL", 0.5)
    urls = [gst["open"].url(name) for name in ("h265", "resize", "hd")] + [gst["lossy"].url("cam")]
    sources = [{"url": url, "id": f"s{i}"} for i, url in enumerate(urls)]
    sources[3]["live"] = {"transport": "udp"}  # loss shows as RTP sequence gaps over UDP
    sinks = [{"type": "jsonl", "path": tmp_path / "{source}.jsonl"}]
    with LiveRun(Settings(sources=sources, sinks=sinks, live=AUTO), blazeface) as run:
        wait_until(lambda: len(run.messages("s1", SourceState.STREAMING)) >= 2, 15, "the size change")
        wait_until(
            lambda: len(run.collector.of("s2")) >= 10 and len(run.collector.of("s0")) >= 20, 15, "frames"
        )
        wait_until(lambda: run.pipeline.stats_snapshot()["sources"]["s3"]["packets_lost"] > 0, 15, "loss")
        stats = run.pipeline.stats_snapshot()["sources"]
    assert run.messages("s0", SourceState.STREAMING)[0].startswith("320x240 at 10 fps")
    changed = run.messages("s1", SourceState.STREAMING)[1]
    assert changed.startswith("size changed to 480x272"), changed
    streaming = [status for status in _statuses(tmp_path / "s1.jsonl") if status["state"] == "streaming"]
    sizes = [(status["width"], status["height"]) for status in streaming]
    assert sizes[:2] == [(320, 240), (480, 272)], "status lines in the JSON Lines file carry the size"
    assert run.messages("s2", SourceState.STREAMING)[0].startswith("1920x1080")
    for source_id in ("s0", "s1", "s2"):
        _pts_ok(run, source_id)
        assert stats[source_id]["packets_lost"] == 0
    assert stats["s3"]["packets_lost"] > 0 and stats["s3"]["decode_errors"] > 0, stats["s3"]
    assert any("RTP packets lost" in record.getMessage() for record in caplog.records)


def _statuses(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if '"type":"status"' in line]


def test_misconfigured_cameras_fail_with_one_line_each(
    gst: dict[str, GstServer], silent_server: int, tmp_path: Path, run_cli: CliRunner
) -> None:
    config = tmp_path / "cams.yaml"
    sources = [
        {"id": "password", "url": gst["digest"].url("cam", "viewer:wr@ng#pass word")},
        {"id": "path", "url": gst["open"].url("nope", f"viewer:{PASSWORD}")},
        {"id": "transport", "url": gst["tcp"].url("cam"), "live": {"transport": "udp"}},
        {"id": "silent", "url": f"rtsp://127.0.0.1:{silent_server}/cam"},
    ]
    live = {**AUTO, "connect_timeout": 2.0}
    config.write_text(yaml.safe_dump({"sources": sources, "live": live}))
    started = time.monotonic()
    result = run_cli("run", "--config", config, "--duration", "8", "--events", tmp_path / "{source}.jsonl",
                     "--no-progress", timeout=60)  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 1 and took < 30
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 4, result.stderr
    expected = {
        "password": "401 Unauthorized (authorization failed): check the user name and password; gave up",
        "path": "404 Not Found: check the stream path; gave up after 3 attempts",
        "transport": "the server refuses RTP over UDP (set live.transport: auto); gave up after 3 attempts",
        "silent": "never streamed: cannot connect: no answer within 2 s",
    }
    for line, (source_id, reason) in zip(errors, expected.items(), strict=True):
        assert f"{source_id}: " in line and reason in line, line
    outputs = result.stderr + result.stdout + "".join(p.read_text() for p in tmp_path.glob("*.jsonl"))
    for secret in ("wr@ng", "pass word", "Pa@ss", "x y'z", "viewer"):
        assert secret not in outputs
    for source_id in ("password", "path", "transport"):
        assert _statuses(tmp_path / f"{source_id}.jsonl")[-1]["state"] == "failed"
    connecting, gave_up = _statuses(tmp_path / "silent.jsonl")[:2]
    waited = gave_up["wall_time"] - connecting["wall_time"]
    assert 1.6 <= waited <= 2.4, f"connect_timeout 2 s took {waited:.2f} s"


def test_out_video_from_every_server(
    gst: dict[str, GstServer], rtsp_server: RtspServer, sample_video: Path, tmp_path: Path,
    blazeface: BlazeFaceDetector,
) -> None:  # fmt: skip
    rtsp_server.publish("cam", sample_video)
    sources = [
        {"id": "aac", "url": gst["open"].url("cam")},
        {"id": "digest", "url": gst["digest"].url("cam", f"viewer:{PASSWORD}")},
        {"id": "basic", "url": gst["basic"].url("cam", f"viewer:{PASSWORD}")},
        {"id": "hevc", "url": gst["open"].url("h265")},
        {"id": "perl", "url": rtsp_server.url("cam")},
    ]
    sinks = [
        {"type": "video", "path": tmp_path / "{source}.mp4"},
        {"type": "jsonl", "path": tmp_path / "{source}.jsonl"},
    ]
    run = LiveRun(Settings(sources=sources, sinks=sinks, live=AUTO), blazeface)
    with run:
        wait_until(lambda: all(len(run.collector.of(source["id"])) >= 30 for source in sources), 30, "frames")
    video_sink = next(
        sink for name, sink in run.pipeline.sinks_snapshot().items() if name.startswith("video")
    )
    assert video_sink["error"] is None
    decoded, processed = 0, 0
    for source in sources:
        processed += len(read_records(tmp_path / f"{source['id']}.jsonl"))
        with av.open(str(tmp_path / f"{source['id']}.mp4")) as video:
            decoded += sum(1 for _ in video.decode(video=0))
    # every frame the video sink was given is in an MP4 (its queue drops results on a slow machine
    # in live runs; that is the sink runner's policy, counted in its "dropped")
    assert decoded + video_sink["dropped"] == processed, (decoded, video_sink["dropped"], processed)
    written = " ".join(path.read_text() for path in tmp_path.glob("*.jsonl"))
    messages = " ".join(event.message for _, event in run.events) + repr(run.report)
    assert PASSWORD not in written + messages and "viewer" not in written + messages


def test_read_timeout_and_restart_times(gst: dict[str, GstServer], blazeface: BlazeFaceDetector) -> None:
    server, publisher = gst["tcp"], gst["publishers"][2]  # type: ignore[index]
    live = {**AUTO, "read_timeout": 2.0, "stall_timeout": 30.0}
    with LiveRun(Settings(sources=[{"url": server.url("cam"), "id": "s0"}], live=live), blazeface) as run:
        wait_until(lambda: len(run.collector.of("s0")) >= 10, 15, "frames")
        publisher.kill()  # the camera stops sending; its server stays up
        wait_until(lambda: run.first("s0", SourceState.RECONNECTING), 10, "the read timeout")
        last_frame = run.collector.of("s0")[-1].at
        noticed = run.first("s0", SourceState.RECONNECTING)
        assert noticed is not None
        assert 1.6 <= noticed - last_frame <= 2.4, (
            f"read_timeout 2 s noticed after {noticed - last_frame:.2f} s"
        )
        assert "no data within 2 s" in run.messages("s0", SourceState.RECONNECTING)[0]
        publisher.start()
        wait_until(lambda: run.first("s0", SourceState.STREAMING, noticed), 15, "streaming again")

        server.kill()
        time.sleep(2.0)  # down for a while: the delay grows to its cap
        server.start()
        back_up = time.monotonic()
        wait_until(lambda: run.first("s0", SourceState.STREAMING, back_up), 15, "streaming after the restart")
        took = run.first("s0", SourceState.STREAMING, back_up) - back_up  # type: ignore[operator]
        # the next attempt comes within the backoff bound; then the server builds the shared media
        # (a keyframe of the publisher's, every 0.5 s) and FFmpeg reads up to the next keyframe
        assert took <= BOUND + 1.0 + 2 * GOP_S, f"back {took:.2f} s after the server"
    log.info(
        "read_timeout 2 s noticed after %.2f s; streaming %.2f s after the restart",
        noticed - last_frame,
        took,
    )
    _pts_ok(run, "s0")


def test_udp_dropped_on_the_way_switches_to_tcp(
    gst: dict[str, GstServer], blazeface: BlazeFaceDetector, caplog: pytest.LogCaptureFixture
) -> None:
    """A firewall between camera and reader: the RTSP session over UDP is set up and played, and
    not one RTP packet arrives (tests/rtsp_proxy.py sends the server's RTP to ports nobody reads)."""
    target = gst["open"].port
    # UDP first, as it worked before: a UDP-only camera (461 to TCP) until the network changes
    moving = RtspProxy(target, refuse_tcp=True).start()
    blocked, both = RtspProxy(target, block_udp=True).start(), RtspProxy(target, True, True).start()
    mute = RtspProxy(target, mute_tcp=True).start()  # the other way round: RTP over TCP never comes
    timeout = 2.0
    # the shared camera media is built on a first DESCRIBE and can take longer than 2 s: a reader
    # that stays (reading nothing: UDP does not hold the server back) keeps it built
    keeper = av.open(gst["open"].url("cam"), options={"rtsp_transport": "udp"}, timeout=10)
    sources = [
        {"id": "auto", "url": moving.url("cam")},
        {"id": "forced", "url": blocked.url("cam"), "live": {"transport": "udp"}},
        {"id": "nowhere", "url": both.url("cam")},
        {"id": "mute", "url": mute.url("cam")},
    ]
    live = {**AUTO, "connect_timeout": timeout, "stall_timeout": 30.0}
    try:
        with LiveRun(Settings(sources=sources, live=live), blazeface) as run:
            wait_until(lambda: len(run.collector.of("auto")) >= 10, 15, "frames over UDP")
            assert run.messages("auto", SourceState.STREAMING)[0].endswith("over UDP")
            moving.refuse_tcp, moving.block_udp = False, True
            cut = time.monotonic()
            moving.drop()  # the network changes under a running session
            wait_until(lambda: run.first("auto", SourceState.STREAMING, cut), 20, "streaming again")
            took = run.first("auto", SourceState.STREAMING, cut) - cut  # type: ignore[operator]
            wait_until(lambda: len(run.collector.of("auto", cut)) >= 10, 10, "frames over TCP")
            wait_until(lambda: run.first("nowhere", SourceState.RECONNECTING), 10, "no transport")
            wait_until(lambda: len(run.collector.of("mute")) >= 10, 10, "frames over UDP after a mute TCP")
    finally:
        for proxy in (moving, blocked, both, mute):
            proxy.close()
        keeper.close()
    assert run.messages("auto", SourceState.STREAMING)[-1].endswith("over TCP")
    assert moving.diverted == 1, "UDP was asked for first (it had worked), once"
    switched = sorted(r.getMessage() for r in caplog.records if "; switching to " in r.getMessage())
    assert switched == [
        f"source auto: no video packet arrived over UDP within {timeout:g} s: a firewall or NAT on the way"
        " may drop UDP; switching to TCP",
        f"source mute: no video packet arrived over TCP within {timeout:g} s: the server sends none (or no"
        " keyframe yet); switching to UDP",
    ]
    assert run.messages("mute", SourceState.STREAMING)[0].endswith("over UDP")
    # the dropped connection is noticed at once; then a UDP session that stays silent for the probing
    # time (connect_timeout), and TCP, a keyframe of the camera's away
    assert took <= timeout + BOUND + 1.0 + 2 * GOP_S, f"streaming over TCP {took:.2f} s after the cut"
    log.info("blocked UDP: streaming over TCP %.2f s after the network changed", took)
    forced = run.messages("forced", SourceState.RECONNECTING)[0]
    assert f"no video packet arrived over UDP within {timeout:g} s" in forced, forced
    assert "may drop UDP; try live.transport: tcp; attempt 2 in " in forced, forced
    assert not run.collector.of("forced") and blocked.diverted >= 1
    nowhere = run.messages("nowhere", SourceState.RECONNECTING)[0]
    assert "refuses RTP over TCP; no video packet arrived over UDP within 2 s" in nowhere, nowhere


def test_errors_of_the_decoders_threads_are_counted(
    gst: dict[str, GstServer], blazeface: BlazeFaceDetector
) -> None:
    """A camera that sends four slices per picture, decoded by slice threads: the errors met in
    slices decoded by FFmpeg's worker threads count too (zeroed bytes in five places of the clip)."""
    settings = Settings(sources=[{"url": gst["open"].url("slices"), "id": "s0"}], live=AUTO)
    with LiveRun(settings, blazeface) as run:
        wait_until(lambda: run.first("s0", SourceState.RECONNECTING), 15, "the clip played once")
        stats = run.pipeline.stats_snapshot()["sources"]["s0"]
    log.info("damaged slices over RTSP: %s", stats)
    assert stats["decode_errors"] == len(DAMAGE_AT), "one for each damaged picture"


def _closed_after(message: str) -> int:
    """The frame count in the reason given when the server ends the connection (fails otherwise)."""
    closed = re.match(
        r"the camera closed the connection after (\d+) frames \(camera or NVR restarted, or a device on"
        r" the way cut it\); attempt 2 in ",
        message,
    )
    assert closed is not None, message
    return int(closed.group(1))


def test_why_a_camera_dropped_closed_or_silent(
    gst: dict[str, GstServer], blazeface: BlazeFaceDetector
) -> None:
    """A camera user reads what happened, not 'the stream ended' (a file's end): a connection the
    server, or a device on the way, closes (over TCP and over UDP, whose RTSP connection FFmpeg
    watches too), and one that stays open while no media comes (tests/rtsp_proxy.py cuts or mutes)."""
    target = gst["open"].port
    tcp, udp = RtspProxy(target).start(), RtspProxy(target).start()
    sources = [
        {"id": "tcp", "url": tcp.url("cam"), "live": {"transport": "tcp"}},
        {"id": "udp", "url": udp.url("cam"), "live": {"transport": "udp"}},
    ]
    live = {**AUTO, "read_timeout": 2.0, "stall_timeout": 30.0}
    try:
        with LiveRun(Settings(sources=sources, live=live), blazeface) as run:
            for source in ("tcp", "udp"):
                wait_until(lambda source=source: len(run.collector.of(source)) >= 10, 20, f"{source} frames")
            seen = {source: len(run.collector.of(source)) for source in ("tcp", "udp")}
            cut = time.monotonic()
            tcp.drop()
            udp.drop()
            for source in ("tcp", "udp"):
                wait_until(
                    lambda source=source: run.first(source, SourceState.RECONNECTING, cut), 5, "the cut"
                )
            wait_until(lambda: run.first("tcp", SourceState.STREAMING, cut), 15, "streaming again over TCP")
            tcp.mute_tcp = True  # the connection stays up; the media on it stops
            muted = time.monotonic()
            wait_until(lambda: run.first("tcp", SourceState.RECONNECTING, muted), 10, "the silence")
            # from the last frame: FFmpeg may still hand over what it held back when the media stopped
            last_frame = run.collector.of("tcp")[-1].at
            noticed = run.first("tcp", SourceState.RECONNECTING, muted) - last_frame  # type: ignore[operator]
    finally:
        tcp.close()
        udp.close()
    for source in ("tcp", "udp"):
        frames = _closed_after(run.messages(source, SourceState.RECONNECTING)[0])
        assert frames >= seen[source], (
            f"{frames} frames on the connection, {seen[source]} seen before the cut"
        )
    silent = [e.message for at, e in run.events if e.source_id == "tcp" and at >= muted]
    assert silent[0].startswith(
        "no data within 2 s: the camera stopped sending, or the network to it is down (the connection"
        " stayed open); attempt "
    ), silent
    assert 1.6 <= noticed <= 2.6, f"read_timeout 2 s noticed {noticed:.2f} s after the last frame"
    assert not any("stream ended" in message for _, e in run.events for message in [e.message])
    log.info("a muted TCP connection noticed %.2f s after its last frame", noticed)
