"""GStreamer's RTSP server (tests/gst_rtsp_server.py under the system Python) and the FFmpeg
publishers that feed its camera-like mounts MPEG-TS over UDP on loopback; all killed at the end."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rtsp_server import HOST, _kill, _spawn, free_tcp_port, free_udp_range, looped_input, wait_until

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-gi and gir1.2-gst-rtsp-server-1.0 live here
SCRIPT = Path(__file__).with_name("gst_rtsp_server.py")
TS_CAPS = 'caps="video/mpegts,systemstream=(boolean)true"'
H264 = "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1"


def live_h264(port: int, audio: str = "") -> str:
    """A shared camera: H.264 from a UDP MPEG-TS publisher on ``port``, plus an optional audio track."""
    demux = f"udpsrc port={port} {TS_CAPS} ! tsdemux name=d d. ! queue ! {H264}"
    return f"( {demux} {audio} )"


AAC_FROM_TS = "d. ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97"  # the publisher's AAC track
G711 = "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! alawenc ! rtppcmapay name=pay1"


def file_mount(path: Path, codec: str = "h264") -> str:
    """Plays an MPEG-TS file once per client."""
    parse = H264 if codec == "h264" else "h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96"
    return f"( filesrc location={path} ! tsdemux ! {parse} )"


@dataclass
class GstServer:
    """One server process; ``kill`` and ``restart`` keep its port (a camera that reboots)."""

    workdir: Path
    options: list[str] = field(default_factory=list)  # --protocols, --auth ..., --drop-every
    live: dict[str, str] = field(default_factory=dict)  # mount -> launch line
    files: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_tcp_port)
    _process: subprocess.Popen[bytes] | None = None

    def url(self, mount: str, login: str = "") -> str:
        return f"rtsp://{login}{'@' if login else ''}{HOST}:{self.port}/{mount}"

    def start(self) -> GstServer:
        args = [SYSTEM_PYTHON, str(SCRIPT), "--port", str(self.port), *self.options]
        args += [item for mount, launch in self.live.items() for item in ("--live", f"/{mount}={launch}")]
        args += [item for mount, launch in self.files.items() for item in ("--file", f"/{mount}={launch}")]
        log = self.workdir / f"gst-{self.port}-{len(list(self.workdir.glob(f'gst-{self.port}-*')))}.log"
        self._process = _spawn(args, log)
        wait_until(lambda: "ready" in log.read_text() or self._process.poll() is not None, 20, "the server")
        assert self._process.poll() is None, log.read_text()
        return self

    def kill(self) -> None:
        _kill(self._process)

    def restart(self) -> None:
        self.kill()
        self.start()


class Publisher:
    """FFmpeg looping a video (and a sine tone as AAC) as MPEG-TS to a UDP port, in real time."""

    def __init__(self, workdir: Path, video: Path, audio: bool = False) -> None:
        self.port = free_udp_range(2)
        self.workdir, self.video, self.audio = workdir, video, audio
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Publisher:
        sound = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"] if self.audio else []
        codecs = (
            ["-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac"] if self.audio else ["-c", "copy"]
        )
        args = looped_input(self.video)
        target = f"udp://{HOST}:{self.port}?pkt_size=1316"
        self._process = _spawn([*args, *sound, *codecs, "-f", "mpegts", target], self.workdir / "publish.log")
        return self

    def kill(self) -> None:
        _kill(self._process)
