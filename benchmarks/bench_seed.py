"""The seed's stack doing the seed's job: TensorFlow.js (wasm backend, Node) on the same photos.

    (cd benchmarks/seed_tfjs && npm install)      # once: @tensorflow/tfjs, tfjs-backend-wasm, jpeg-js, pngjs
    python benchmarks/bench_seed.py [--concurrency 1,4,16] [--images 200] [--backend wasm]

Per image, in ``seed_tfjs/bench.mjs``: decode the photo bytes, letterbox, resize to 256, Human's
BlazeFace graph model, non-max suppression, a 64x64 crop per face, Human's emotion model. It prints
images/s and p50/p99 latency per concurrency. The HTTP comparison imports :func:`run_seed` and
:data:`PHOTOS` so both columns come from the same photos in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO / "benchmarks" / "seed_tfjs"
PHOTOS = ("face.jpg", "parrot.jpg", "hot_dog.jpg", "kite_and_cold.jpg")  # JPEGs of ../shared/images


def shared_dir() -> Path:
    return Path(os.environ.get("STREAMPROC_SHARED_DIR", REPO.parent / "shared"))


def photo_paths(shared: Path | None = None) -> list[Path]:
    folder = (shared or shared_dir()) / "images"
    return [folder / name for name in PHOTOS]


@dataclass(frozen=True)
class SeedResult:
    concurrency: int
    images_per_s: float
    p50_ms: float
    p99_ms: float
    faces_per_image: float
    backend: str
    predecoded: bool = False


def run_seed(
    concurrency: int,
    images: int = 200,
    warmup: int = 12,
    backend: str = "wasm",
    photos: list[Path] | None = None,
    shared: Path | None = None,
    predecoded: bool = False,
) -> SeedResult:
    """One fresh Node process of ``bench.mjs``; raises RuntimeError with its message when it fails.

    ``predecoded`` decodes each photo once before timing (the issue's orientation figures did).
    """
    node = shutil.which("node")
    if node is None or not (SEED_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        raise RuntimeError(f"needs Node.js and `npm install` in {SEED_DIR}")
    models = (shared or shared_dir()) / "models" / "tfjs" / "human-3.3.6"
    command = [
        node, "bench.mjs", "--models", str(models),
        "--images", ",".join(str(path) for path in photos or photo_paths(shared)),
        "--backend", backend, "--images-timed", str(images), "--warmup", str(warmup),
        "--concurrency", str(concurrency), "--predecoded", str(int(predecoded)),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=SEED_DIR, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"bench.mjs failed: {done.stderr.strip().splitlines()[-1:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return SeedResult(
        concurrency,
        data["images_per_s"],
        data["p50_ms"],
        data["p99_ms"],
        data["faces_per_image"],
        f"{data['backend']} ({data['threads']} thread)",
        predecoded,
    )


def stage_emotion(folder: Path, shared: Path | None = None) -> Path:
    """Human's emotion model with streamproc's sidecar and labels, copied into ``folder``; its
    model.json path."""
    human = (shared or shared_dir()) / "models" / "tfjs" / "human-3.3.6"
    for source in (
        human / "emotion.json",
        human / "emotion.bin",
        *(REPO / "models" / "tfjs").glob("emotion.*"),
    ):
        shutil.copy(source, folder / source.name)
    return folder / "emotion.json"


def run_engine(images: int = 200, warmup: int = 12, shared: Path | None = None) -> SeedResult:
    """streamproc's own engine on the same photos, in this process, one thread, no HTTP.

    Decode (OpenCV), BlazeFace short-range (LiteRT), a square crop per face, Human's emotion model
    from its model.json (converted to TFLite and cached): what the detection API runs per request.
    """
    import cv2
    import numpy as np

    from streamproc.analysis.snapshots import square_crop
    from streamproc.config.settings import ClassifierSettings
    from streamproc.inference.blazeface import BlazeFaceDetector
    from streamproc.inference.classifiers import open_classifier
    from streamproc.inference.models import ModelRegistry

    shared = shared or shared_dir()
    photos = [path.read_bytes() for path in photo_paths(shared)]
    with tempfile.TemporaryDirectory() as folder:
        settings = ClassifierSettings(model=str(stage_emotion(Path(folder), shared)))
        classifier = open_classifier(settings, ModelRegistry.load())
    detector = BlazeFaceDetector("short")
    latencies: list[float] = []
    faces = 0
    for index in range(warmup + images):
        started = time.perf_counter()
        bgr = cv2.imdecode(np.frombuffer(photos[index % len(photos)], np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found = detector.detect_image(rgb)
        classifier.classify([square_crop(rgb, box, 0.0) for box in found.boxes])
        if index >= warmup:
            latencies.append((time.perf_counter() - started) * 1000)
            faces += len(found.boxes)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    rate = len(latencies) / (sum(latencies) / 1000)
    return SeedResult(1, rate, statistics.median(latencies), p99, faces / len(latencies), "engine")


def table(results: list[SeedResult]) -> str:
    lines = [f"{'stack':<40} {'conc':>4} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'faces/img':>9}"]
    for result in results:
        stack = f"seed: TF.js {result.backend}" + (", pre-decoded" if result.predecoded else "")
        if result.backend == "engine":
            stack = "streamproc engine, no HTTP (1 thread)"
        lines.append(
            f"{stack:<40} {result.concurrency:>4} {result.images_per_s:>9.1f} {result.p50_ms:>8.1f} "
            f"{result.p99_ms:>8.1f} {result.faces_per_image:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated (default 1,4,16)")
    parser.add_argument("--images", type=int, default=200, help="timed images per run (default 200)")
    parser.add_argument("--warmup", type=int, default=12)
    parser.add_argument("--backend", default="wasm", choices=["wasm", "cpu"])
    parser.add_argument(
        "--predecoded", action="store_true", help="add a concurrency-1 row with photos decoded before timing"
    )
    parser.add_argument("--engine", action="store_true", help="add a row: streamproc's engine in-process")
    args = parser.parse_args(argv)
    try:
        levels = [int(level) for level in args.concurrency.split(",")]
        results = [run_seed(level, args.images, args.warmup, args.backend) for level in levels]
        if args.predecoded:
            results.append(run_seed(1, args.images, args.warmup, args.backend, predecoded=True))
        if args.engine:
            results.append(run_engine(args.images, args.warmup))
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"bench_seed: {exc}", file=sys.stderr)
        return 1
    print(f"photos: {', '.join(PHOTOS)} (bytes in memory; decoding timed)")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
