"""The detection API under load, against the seed's stack in the same run: a client drives
``POST /api/v1/detect?classify=faces`` with the emotion model at several concurrencies and reports
images/s and p50/p99 latency (JPEG upload and decoding, detection, face crops and the classifier
included, over real HTTP on loopback); then ``bench_seed.run_seed`` does the seed's job on the same
photos in TF.js (Node, wasm) at the same concurrencies.

    (cd benchmarks/seed_tfjs && npm install)     # once, for the seed's columns
    python benchmarks/bench_detect_http.py [--concurrency 1 4 16] [--seconds 10] [--no-seed]

By default it starts ``python -m streamproc serve`` from this checkout (``--workers`` inference
threads) with Human's emotion model (TF.js ``model.json``, from ../shared) and stops it at the end;
``--model`` names a classifier instead (e.g. ``mobilenet_v1``), ``--url`` measures a running server.
The photos are bench_seed's (the JPEGs of ../shared/images), sent round-robin.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
from bench_seed import SeedResult, photo_paths, run_seed, shared_dir, stage_emotion, table

REPO = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 5.0  # images/s against the seed's stack, with a lower p99, at every concurrency


@dataclass
class Level:
    concurrency: int
    images: int
    errors: int
    seconds: float
    images_per_s: float
    p50_ms: float
    p99_ms: float
    faces_per_image: float


def drive(url: str, images: list[bytes], concurrency: int, seconds: float, model: str) -> Level:
    """``concurrency`` clients, each sending one request after the other for ``seconds``."""
    params = {"classify": "faces", "model": model}
    latencies: list[float] = []
    errors, faces = [0], [0]
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
                        faces[0] += len(reply.json()["faces"])
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
        round(faces[0] / max(1, len(latencies)), 2),
    )


@contextmanager
def streamproc_serve(model: str, workers: int, detector: str = "short") -> Iterator[str]:
    """``streamproc serve`` from this checkout on a free port; yields the detect url."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "STREAMPROC_DETECTOR__MODEL": detector}
    env.setdefault("STREAMPROC_MODELS_DIR", str(shared_dir() / "models"))
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
    images = [path.read_bytes() for path in photo_paths()]
    drive(url, images, max(levels), 1.0, model)  # warm-up: first invokes, connections, caches
    return [drive(url, images, concurrency, seconds, model) for concurrency in levels]


def print_levels(levels: list[Level], label: str) -> None:
    print(f"\n{label}")
    print(
        f"{'concurrency':>11} {'images':>7} {'errors':>6} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'faces/img':>9}"
    )
    for level in levels:
        print(
            f"{level.concurrency:>11} {level.images:>7} {level.errors:>6} {level.images_per_s:>9.1f} "
            f"{level.p50_ms:>8.1f} {level.p99_ms:>8.1f} {level.faces_per_image:>9.2f}"
        )


def compare(levels: list[Level], seed: list[SeedResult]) -> bool:
    """Print streamproc against the seed per concurrency; True when every level meets the target."""
    print(f"\n{'concurrency':>11} {'images/s':>9} {'seed':>6} {'ratio':>6} {'p99 ms':>7} {'seed':>7}  target")
    met = True
    for ours, theirs in zip(levels, seed, strict=True):
        ratio = ours.images_per_s / theirs.images_per_s
        ok = ratio >= TARGET_SPEEDUP and ours.p99_ms < theirs.p99_ms
        met &= ok
        print(
            f"{ours.concurrency:>11} {ours.images_per_s:>9.1f} {theirs.images_per_s:>6.1f} {ratio:>6.1f} "
            f"{ours.p99_ms:>7.1f} {theirs.p99_ms:>7.1f}  {'met' if ok else 'MISSED'}"
        )
    print(f"target: >= {TARGET_SPEEDUP:g}x the seed's images/s and a lower p99 at every concurrency")
    return met


def serve_and_measure(args: argparse.Namespace) -> list[Level]:
    if args.url:
        return measure(args.url, args.model, args.concurrency, args.seconds)
    with tempfile.TemporaryDirectory() as folder:
        model = str(stage_emotion(Path(folder))) if args.model == "emotion" else args.model
        with streamproc_serve(model, args.workers, args.detector) as url:
            return measure(url, args.model, args.concurrency, args.seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="emotion", help="face classifier the API runs (default emotion)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="client counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each level")
    parser.add_argument("--workers", type=int, default=2, help="inference threads of the server it starts")
    parser.add_argument("--url", help="detect url of a running server (default: start one)")
    parser.add_argument("--detector", default="short", choices=["short", "full"], help="BlazeFace model")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's stack")
    parser.add_argument("--seed-images", type=int, default=200, help="timed images per seed level")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    levels = serve_and_measure(args)
    label = f"streamproc POST /api/v1/detect?classify=faces&model={args.model}, BlazeFace {args.detector}"
    print_levels(levels, label)
    seed: list[SeedResult] = []
    if not args.no_seed:
        try:
            seed = [run_seed(level, args.seed_images) for level in args.concurrency]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"seed's stack not measured: {exc}", file=sys.stderr)
            return 1
        print("\nseed: TF.js in Node, same photos, same run")
        print(table(seed))
    if args.out:
        results = {"streamproc": [asdict(level) for level in levels], "seed": [asdict(row) for row in seed]}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    met = compare(levels, seed) if seed else True
    return 1 if any(level.errors for level in levels) or not met else 0


if __name__ == "__main__":
    sys.exit(main())
