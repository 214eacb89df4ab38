"""Cost of face classification: detection-only throughput vs detection + MobileNet v2 on faces.

Both variants run the same pipeline (BlazeFace on every frame, tracking, a JSON Lines sink) on the
same generated 720p30 clip with two faces; the second adds ``classifier: {enabled: true, targets:
faces, model: mobilenet_v2}`` with its default schedule (classify at confirmation, on a better view
and every ``every_n_frames``; never a face on every frame). Variants are interleaved within each
repeat so load drifting on a shared machine hits both alike. Only ``Pipeline.run`` is timed; opening
the file and loading the models happen before.

The target (issue 3): classification on keeps at least 0.8x of detection-only throughput.

``--batch-check`` also measures, on a float MobileNetV2 converted from Keras with a dynamic batch
(needs TensorFlow), whether one invoke over N crops beats N invokes; the quantised MobileNets in the
registry pin batch 1 in their graph, so the classifier invokes them once per crop.

Run: ``.venv/bin/python benchmarks/bench_classify.py [--seconds 10] [--repeats 3] [--models-dir DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from streamproc.config.settings import JsonlSinkSettings, Settings, SourceSettings
from streamproc.pipeline.build import build_pipeline

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.8
WIDTH, HEIGHT, FPS = 1280, 720, 30


def _make_sample_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "samples" / "make_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _settings(video: Path, out: Path, classify: bool) -> Settings:
    return Settings(
        sources=[SourceSettings(url=str(video))],
        sinks=[JsonlSinkSettings(type="jsonl", path=out)],
        classifier={"enabled": classify, "targets": "faces", "model": "mobilenet_v2"},
        progress=False,
    )


def _run_once(video: Path, folder: Path, classify: bool) -> tuple[float, dict]:
    out = folder / f"{'classify' if classify else 'detect'}-{time.monotonic_ns()}.jsonl"
    pipeline = build_pipeline(_settings(video, out, classify))
    report = pipeline.run()
    assert report.ok, report.problems()
    out.unlink()
    return report.fps, pipeline.stats_snapshot()["inference_ms"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence stdout and stderr at the file-descriptor level (TensorFlow's C++ logging too)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _batch_check(crops: int, repeats: int) -> None:
    """Float MobileNetV2 with a dynamic batch: one invoke over N crops vs N invokes."""
    with _quiet():
        import keras
        import tensorflow as tf

    from streamproc.inference.runtime import TfliteModel

    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mobilenet_v2_float.tflite"
        with _quiet():  # TensorFlow logs device probing and the converter prints the whole graph
            model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None)
            path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        tflite = TfliteModel(path)
        batch = np.random.default_rng(0).random((crops, 224, 224, 3), dtype=np.float32)
        tflite.invoke(batch[:1])
        tflite.invoke(batch)
        per_crop, batched = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(crops):
                tflite.invoke(batch[i : i + 1])
            per_crop.append((time.perf_counter() - start) * 1000 / crops)
            start = time.perf_counter()
            tflite.invoke(batch)
            batched.append((time.perf_counter() - start) * 1000 / crops)
    print(
        f"batch check (float MobileNetV2 224, dynamic batch, {crops} crops): "
        f"per-crop invokes {min(per_crop):.2f} ms/crop, one batched invoke {min(batched):.2f} ms/crop"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, help="default: STREAMPROC_MODELS_DIR or ../shared/models")
    parser.add_argument("--batch-check", action="store_true", help="also time batched vs per-crop invokes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    models_dir = (
        args.models_dir or os.environ.get("STREAMPROC_MODELS_DIR") or REPO.parent / "shared" / "models"
    )
    os.environ["STREAMPROC_MODELS_DIR"] = str(models_dir)

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        video = folder / "bench720.mp4"
        _make_sample_module().make_sample(video, WIDTH, HEIGHT, FPS, args.seconds, scenario="moving")
        _run_once(video, folder, classify=True)  # warm-up: page cache, model files, allocator
        fps: dict[bool, list[float]] = {False: [], True: []}
        inference: dict = {}
        for _ in range(args.repeats):
            for classify in (False, True):
                value, inference[classify] = _run_once(video, folder, classify)
                fps[classify].append(value)

    detect, classify = statistics.median(fps[False]), statistics.median(fps[True])
    ratio = classify / detect
    best_ratio = max(fps[True]) / max(fps[False])
    calls = inference[True].get("mobilenet_v2", {})
    print(
        f"720p{FPS} clip, {args.seconds:g} s ({round(args.seconds * FPS)} frames), two faces, "
        f"{args.repeats} repeats"
    )
    print(f"detection only:            median {detect:7.1f} fps  (best {max(fps[False]):.1f})")
    print(f"detection + MobileNet v2:  median {classify:7.1f} fps  (best {max(fps[True]):.1f})")
    print(
        f"classifier calls per run: {calls.get('count')}, {calls.get('mean')} ms mean per call "
        f"(quantised model pins batch 1: one invoke per crop)"
    )
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(
        f"ratio of medians: {ratio:.3f}, of bests: {best_ratio:.3f} (target >= {TARGET_RATIO}) -> {verdict}"
    )
    if args.batch_check:
        _batch_check(crops=4, repeats=5)
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
