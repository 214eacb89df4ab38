"""A real RTSP server for tests: Debian's rtsp-server-perl, fed by FFmpeg, on free loopback ports.

rtsp-server-perl takes publishers on one TCP port and readers on another; media goes over UDP
(RTP) only: publishers must use ``-rtsp_transport udp``, readers must ask for UDP too (it answers
TCP-interleaved SETUPs with 400 Bad Request). It binds UDP ports from ``--rtp_start_port`` upward,
two per SETUP, so each instance gets its own free range. Every process runs in its own process
group and is killed with it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
RTP_PORTS = 100  # UDP ports reserved per server: two per SETUP, publishers' and readers'


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def free_udp_range(count: int, tries: int = 50) -> int:
    """An even port with ``count`` free UDP ports above it, below Linux's ephemeral range."""
    for _ in range(tries):
        base = random.randrange(20_000, 32_000 - count, 2)
        probes: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                probes.append(probe)
                probe.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no {count} free UDP ports found for the RTSP server")


def wait_until(condition: object, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def looped_input(video: Path) -> list[str]:
    """FFmpeg reading ``video`` in real time, over and over: a camera's stream."""
    return ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video)]


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill(process: subprocess.Popen[bytes] | None, signum: int = signal.SIGKILL) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):  # it may have just exited
        os.killpg(process.pid, signum)
    process.wait(timeout=10)


class RtspServer:
    """One rtsp-server-perl instance and the FFmpeg publishers that loop videos into it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.client_port = free_tcp_port()
        self.source_port = free_tcp_port()
        self.rtp_start = free_udp_range(RTP_PORTS)
        self._server: subprocess.Popen[bytes] | None = None
        self._publishers: dict[str, tuple[Path, subprocess.Popen[bytes]]] = {}

    def url(self, name: str, credentials: str = "") -> str:
        """Where readers connect; ``credentials`` like ``user:pass`` go in front of the host."""
        login = f"{credentials}@" if credentials else ""
        return f"rtsp://{login}{HOST}:{self.client_port}/{name}"

    def start(self) -> None:
        self._server = _spawn(
            [
                "rtsp-server-perl",
                "--clientport",
                str(self.client_port),
                "--serverport",
                str(self.source_port),
                "--client_listen_address",
                HOST,
                "--source_listen_address",
                HOST,
                "--rtp_start_port",
                str(self.rtp_start),
                "--loglevel",
                "1",
            ],
            self.workdir / f"rtsp-server-{self.client_port}.log",
        )
        wait_until(self._accepts_clients, 20, "rtsp-server-perl to listen")

    def publish(self, name: str, video: Path) -> None:
        """Loop ``video`` into the server at /name in real time and wait until readers can play it."""
        publisher = _spawn(
            [
                *looped_input(video),
                "-c",
                "copy",
                "-f",
                "rtsp",
                "-rtsp_transport",
                "udp",
                f"rtsp://{HOST}:{self.source_port}/{name}",
            ],
            self.workdir / f"publisher-{self.client_port}-{name}.log",
        )
        self._publishers[name] = (video, publisher)
        wait_until(lambda: self.describe(name) == 200, 20, f"stream /{name} to be published")

    def describe(self, name: str) -> int | None:
        """The RTSP status code of DESCRIBE /name (200 once published), None if nothing answers."""
        request = (
            f"DESCRIBE rtsp://{HOST}:{self.client_port}/{name} RTSP/1.0\r\nCSeq: 1\r\n"
            "Accept: application/sdp\r\n\r\n"
        )
        try:
            with socket.create_connection((HOST, self.client_port), timeout=2) as conn:
                conn.sendall(request.encode())
                status_line = conn.recv(256).split(b"\r\n", 1)[0].split()
        except OSError:
            return None
        return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None

    def kill(self) -> None:
        """The camera dies: server and publishers gone at once, no goodbye to the readers."""
        for _, publisher in self._publishers.values():
            _kill(publisher)
        _kill(self._server)

    def restart(self) -> None:
        """Start again on the same ports and publish the same videos."""
        published = {name: video for name, (video, _) in self._publishers.items()}
        self.start()
        for name, video in published.items():
            self.publish(name, video)

    def _accepts_clients(self) -> bool:
        try:
            with socket.create_connection((HOST, self.client_port), timeout=1):
                return True
        except OSError:
            return False

    def close(self) -> None:
        self.kill()
        self._publishers.clear()
