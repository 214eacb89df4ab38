"""What the HTTP server costs a file run: fps with the server off, on with nobody watching, and on
with live viewers pulling MJPEG (and a Prometheus-like scrape every 0.5 s).

    python benchmarks/bench_http.py [--seconds 40] [--repeat 3]

Each configuration runs ``--repeat`` times, interleaved (off, on, viewers, off, ...), so drift in the
machine's load spreads over all of them; the median fps is reported. One detector is shared so
model loading is not timed.
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamproc.config.settings import HttpSettings, Settings, SourceSettings
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.pipeline.build import build_pipeline
from streamproc.server import StatusServer
from streamproc.sinks.live import LiveViewSink

REPO = Path(__file__).resolve().parents[1]


def make_video(folder: Path, seconds: float) -> Path:
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "samples" / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.make_sample(folder / "bench.mp4", width=640, height=360, fps=25, seconds=seconds)


def watch(host: str, port: int, path: str, stop: threading.Event) -> None:
    """A viewer: reads an MJPEG stream until told to stop."""
    with socket.create_connection((host, port)) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        conn.settimeout(0.5)
        while not stop.is_set():
            try:
                if not conn.recv(1 << 16):
                    return
            except TimeoutError:
                continue


def scrape(url: str, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        urllib.request.urlopen(url, timeout=5).read()


@dataclass
class Result:
    fps: float
    cpu_ms_per_frame: float  # process CPU time (all threads) per frame: less sensitive to other load
    encoded: int


def run_once(video: Path, detector: BlazeFaceDetector, http: bool, viewers: int, live_fps: float) -> Result:
    cpu = time.process_time()
    fps, frames, encoded = _run(video, detector, http, viewers, live_fps)
    return Result(fps, 1000 * (time.process_time() - cpu) / frames, encoded)


def _run(
    video: Path, detector: BlazeFaceDetector, http: bool, viewers: int, live_fps: float
) -> tuple[float, int, int]:
    settings = Settings(
        sources=[SourceSettings(url=str(video))],
        http=HttpSettings(enabled=http, port=0, live_fps=live_fps),
    )
    if not http:
        report = build_pipeline(settings, detector=detector).run()
        return report.fps, report.frames_processed, 0
    live = LiveViewSink(settings.http.jpeg_quality)
    pipeline = build_pipeline(settings, detector=detector, extra_sinks=[live])
    stop = threading.Event()
    with StatusServer(settings.http, pipeline, live) as server:
        workers = [
            threading.Thread(target=watch, args=("127.0.0.1", server.port, "/live/bench.mjpeg", stop))
            for _ in range(viewers)
        ]
        workers.append(threading.Thread(target=scrape, args=(server.url + "metrics", stop)))
        for worker in workers:
            worker.start()
        report = pipeline.run()
        stop.set()
        for worker in workers:
            worker.join()
    return report.fps, report.frames_processed, live.frames_encoded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40, help="length of the generated clip")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    configurations: dict[str, Callable[[Path, BlazeFaceDetector], Result]] = {
        "http off": lambda v, d: run_once(v, d, http=False, viewers=0, live_fps=10),
        "http on, no viewer": lambda v, d: run_once(v, d, http=True, viewers=0, live_fps=10),
        "http on, 1 viewer @10 fps": lambda v, d: run_once(v, d, http=True, viewers=1, live_fps=10),
        "http on, 2 viewers @25 fps": lambda v, d: run_once(v, d, http=True, viewers=2, live_fps=25),
    }
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder), args.seconds)
        detector = BlazeFaceDetector("short")
        results: dict[str, list[Result]] = {name: [] for name in configurations}
        for round_number in range(args.repeat):
            for name, run in configurations.items():
                result = run(video, detector)
                results[name].append(result)
                print(
                    f"round {round_number + 1}: {name:<28} {result.fps:7.1f} fps "
                    f"{result.cpu_ms_per_frame:5.2f} CPU ms/frame, {result.encoded} frames encoded"
                )
    print()
    fps_off = statistics.median(r.fps for r in results["http off"])
    cpu_off = statistics.median(r.cpu_ms_per_frame for r in results["http off"])
    for name, runs in results.items():
        fps = statistics.median(r.fps for r in runs)
        cpu = statistics.median(r.cpu_ms_per_frame for r in runs)
        print(
            f"{name:<28} median {fps:7.1f} fps ({100 * (fps / fps_off - 1):+5.1f}%), "
            f"{cpu:5.2f} CPU ms/frame ({100 * (cpu / cpu_off - 1):+5.1f}%)"
        )


if __name__ == "__main__":
    main()
