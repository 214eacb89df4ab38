"""The detection API under load: a client drives ``POST /api/v1/detect?classify=faces`` with JPEG
photos at several concurrencies and reports images/s and p50/p99 latency (JPEG decoding, detection,
face crops and the classifier included, over real HTTP on loopback).

    python benchmarks/bench_detect_http.py [--model mobilenet_v1] [--concurrency 1 4 16] [--seconds 10]

By default it starts ``python -m streamproc serve`` from this checkout (``--workers`` inference
threads) and stops it at the end; ``--url`` measures a server that is already running instead.
The photos are ../shared/images (BMPs re-encoded as JPEG), sent round-robin.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMPROC_SHARED_DIR", REPO.parent / "shared"))


@dataclass
class Level:
    concurrency: int
    images: int
    errors: int
    seconds: float
    images_per_s: float
    p50_ms: float
    p99_ms: float


def photos(folder: Path) -> list[bytes]:
    """Every photo of the folder as JPEG bytes (JPEGs as they are, other formats re-encoded)."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in (".jpg", ".jpeg"):
            found.append(path.read_bytes())
        elif path.suffix.lower() in (".bmp", ".png"):
            found.append(
                cv2.imencode(".jpg", cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            )
    if not found:
        raise SystemExit(f"no photos in {folder}")
    return found


def drive(url: str, images: list[bytes], concurrency: int, seconds: float, model: str) -> Level:
    """``concurrency`` clients, each sending one request after the other for ``seconds``."""
    params = {"classify": "faces", "model": model}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        with httpx.Client(timeout=30) as http:
            turn = offset
            while time.perf_counter() < deadline:
                body = images[turn % len(images)]
                turn += 1
                started = time.perf_counter()
                reply = http.post(url, content=body, params=params, headers={"Content-Type": "image/jpeg"})
                spent = time.perf_counter() - started
                with lock:
                    if reply.status_code == 200:
                        latencies.append(spent)
                    else:
                        errors[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000.0
    return Level(
        concurrency,
        len(latencies),
        errors[0],
        round(elapsed, 2),
        round(len(latencies) / elapsed, 1),
        round(float(np.percentile(ms, 50)), 1) if len(ms) else float("nan"),
        round(float(np.percentile(ms, 99)), 1) if len(ms) else float("nan"),
    )


@contextmanager
def streamproc_serve(model: str, workers: int) -> Iterator[str]:
    """``streamproc serve`` from this checkout on a free port; yields the detect url."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.setdefault("STREAMPROC_MODELS_DIR", str(SHARED / "models"))
    command = [sys.executable, "-m", "streamproc", "serve", "--http", "127.0.0.1:0"]
    command += ["--api-model", model, "--workers", str(workers)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:
            found = re.search(r"HTTP server on (http://\S+/)", line)
            if found:
                break
        else:
            raise SystemExit(f"streamproc serve did not start (exit {process.wait()})")
        # keep reading its log, or a full pipe would stall the server
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield found.group(1) + "api/v1/detect"
    finally:
        process.terminate()
        process.wait(30)


def measure(url: str, model: str, levels: Sequence[int], seconds: float) -> list[Level]:
    images = photos(SHARED / "images")
    drive(url, images, max(levels), 1.0, model)  # warm-up: first invokes, connections, caches
    return [drive(url, images, concurrency, seconds, model) for concurrency in levels]


def print_levels(levels: list[Level], label: str) -> None:
    print(f"\n{label}")
    print(f"{'concurrency':>11} {'images':>7} {'errors':>6} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for level in levels:
        print(
            f"{level.concurrency:>11} {level.images:>7} {level.errors:>6} {level.images_per_s:>9.1f} "
            f"{level.p50_ms:>8.1f} {level.p99_ms:>8.1f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="mobilenet_v1", help="face classifier the API runs (default mobilenet_v1)"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="client counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each level")
    parser.add_argument("--workers", type=int, default=2, help="inference threads of the server it starts")
    parser.add_argument("--url", help="detect url of a running server (default: start one)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.url:
        levels = measure(args.url, args.model, args.concurrency, args.seconds)
    else:
        with streamproc_serve(args.model, args.workers) as url:
            levels = measure(url, args.model, args.concurrency, args.seconds)
    print_levels(levels, f"streamproc POST /api/v1/detect?classify=faces&model={args.model} (JPEG photos)")
    if args.out:
        args.out.write_text(json.dumps([asdict(level) for level in levels], indent=2) + "\n")
    return 1 if any(level.errors for level in levels) else 0


if __name__ == "__main__":
    sys.exit(main())
