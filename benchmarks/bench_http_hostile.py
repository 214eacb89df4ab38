"""The HTTP server under the hostile loads it once failed, beside a paced 25 fps source:

1. idle: ``--idle`` sockets (default 1000) connect and send nothing;
2. slow: ``--slow`` clients (default 200) send headers a line at a time and never finish;
3. viewers: ``--viewers`` MJPEG viewers (default 150) read as fast as they can, then hang up.

For each phase: the source's processed fps and dropped frames, p50/p99 of /healthz for a
well-behaved client, open connections left at the end, and the process's RSS (peak, and after the
viewers are gone).

    python benchmarks/bench_http_hostile.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamproc.config.settings import HttpSettings, Settings, SourceSettings  # noqa: E402
from streamproc.pipeline.build import build_pipeline  # noqa: E402
from streamproc.server import StatusServer  # noqa: E402
from streamproc.sinks.live import LiveViewSink  # noqa: E402


def make_video(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "samples" / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.make_sample(folder / "paced.mp4", width=1280, height=720, fps=25, seconds=20)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1e6


def connect(address: tuple[str, int], count: int, first: bytes) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        conn = socket.create_connection(address, timeout=5)
        if first:
            conn.sendall(first)
        clients.append(conn)
    return clients


def still_open(clients: list[socket.socket]) -> int:
    count = 0
    for conn in clients:
        conn.settimeout(0.01)
        try:
            count += conn.recv(65536) != b""
        except TimeoutError:
            count += 1
        except OSError:
            pass
    return count


def read_streams(clients: list[socket.socket], stop: threading.Event) -> None:
    """Drain every viewer's socket as fast as possible (one thread for all)."""
    for conn in clients:
        conn.setblocking(False)
    while not stop.is_set():
        for conn in clients:
            with contextlib.suppress(BlockingIOError, OSError):
                conn.recv(1 << 20)
        time.sleep(0.005)


def phase(name: str, seconds: float, served: dict, during: Callable[[], None] = lambda: None) -> dict:
    pipeline, url = served["pipeline"], served["url"]
    before = pipeline.stats_snapshot()["sources"]["paced"]
    started, latencies, peak = time.monotonic(), [], rss_mb()
    with httpx.Client(timeout=10) as client:
        while time.monotonic() - started < seconds:
            during()
            tick = time.perf_counter()
            client.get(url + "healthz")
            latencies.append((time.perf_counter() - tick) * 1000.0)
            peak = max(peak, rss_mb())
            time.sleep(0.05)
    after = pipeline.stats_snapshot()["sources"]["paced"]
    elapsed = time.monotonic() - started
    return {
        "phase": name,
        "fps": (after["frames_processed"] - before["frames_processed"]) / elapsed,
        "dropped": after["frames_dropped"] - before["frames_dropped"],
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "rss_peak": peak,
    }


def run(args: argparse.Namespace, video: Path) -> list[dict]:
    http = HttpSettings(enabled=True, port=0, request_timeout=args.request_timeout, max_connections=2000)
    settings = Settings(sources=[SourceSettings(url=str(video), realtime=True, loop=True)], http=http)
    live = LiveViewSink()
    pipeline = build_pipeline(settings, extra_sinks=[live])
    thread = threading.Thread(target=pipeline.run, daemon=True)
    rows = []
    with StatusServer(http, pipeline, live) as server:
        thread.start()
        served = {"pipeline": pipeline, "url": server.url}
        address = ("127.0.0.1", server.port)
        time.sleep(2)
        rows.append(phase("baseline", args.seconds, served))
        idle = connect(address, args.idle, b"")
        rows.append(phase(f"{args.idle} idle sockets", args.seconds, served))
        rows[-1]["left_open"] = still_open(idle)
        slow = connect(address, args.slow, b"GET /api/stats HTTP/1.1\r\nHost: localhost\r\n")

        def dribble() -> None:
            for conn in slow:
                with contextlib.suppress(OSError):
                    conn.sendall(b"X-Slow: 1\r\n")

        rows.append(phase(f"{args.slow} slow clients", args.seconds, served, dribble))
        rows[-1]["left_open"] = still_open(slow)
        for conn in idle + slow:
            conn.close()
        viewers = connect(address, args.viewers, b"GET /live/paced.mjpeg HTTP/1.1\r\nHost: localhost\r\n\r\n")
        stop = threading.Event()
        reader = threading.Thread(target=read_streams, args=(viewers, stop), daemon=True)
        reader.start()
        rows.append(phase(f"{args.viewers} MJPEG viewers", args.seconds, served))
        rows[-1]["viewers_counted"] = live.viewers().get("paced", 0)
        stop.set()
        reader.join()
        for conn in viewers:
            conn.close()
        rows.append(phase("after the viewers left", args.seconds, served))
        rows[-1]["viewers_counted"] = live.viewers().get("paced", 0)
        pipeline.stop()
        thread.join(30)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each phase")
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--viewers", type=int, default=150)
    parser.add_argument("--request-timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    with tempfile.TemporaryDirectory() as folder:
        rows = run(args, make_video(Path(folder)))
    print(f"\n{'phase':<24} {'fps':>6} {'dropped':>7} {'p50 ms':>7} {'p99 ms':>7} {'RSS MB':>7}  notes")
    for row in rows:
        notes = ", ".join(f"{key} {row[key]}" for key in ("left_open", "viewers_counted") if key in row)
        print(
            f"{row['phase']:<24} {row['fps']:>6.1f} {row['dropped']:>7} {row['p50']:>7.1f} "
            f"{row['p99']:>7.1f} {row['rss_peak']:>7.0f}  {notes}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
