"""Throughput benchmark: streamproc against the baselines it has to beat, in one run, on the same files.

Variants, measured on the same generated 720p30 and 1080p30 H.264 clips:

a. ``decode``   raw decode only: PyAV, ``thread_type="AUTO"``, every frame, no pixel conversion.
                The ceiling: no pipeline built on this decoder can be faster.
b. ``opencv``   the loop a user would write: ``cv2.VideoCapture.read`` -> ``cvtColor(BGR2RGB)`` ->
                ``detector.detect_image`` (the detector's own preprocessing, then the model)
                (padding, normalisation, LiteRT invoke and post-processing of streamproc's own
                detector, so that b and c differ only in how frames reach the detector).
c. ``pipeline`` ``streamproc run`` in-process: ``Pipeline(...).open()`` then ``run()`` with a JSONL sink.
d. ``+video``   c plus the annotated video sink: the cost of ``--out-video``.
e. ``encoder``  the clip's decoded frames through libx264 with the video sink's options: the CPU that
                ``--out-video`` cannot avoid (its median over the repeats is what d - c is held to).

Only the frame loop is timed: opening files, loading the model and building the pipeline
(``Pipeline.open``) happen before the clock starts, for every variant alike. Variants are interleaved
within each repeat (a, b, c, d, e, a, b, ...) so that load drifting on a shared machine hits all of
them alike; the table shows the best and the median over the repeats.

Run: ``.venv/bin/python benchmarks/bench_throughput.py [--seconds 10] [--repeats 3] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

REPO_ROOT = Path(__file__).resolve().parent.parent
# measure the streamproc of this checkout, not whichever one the virtual environment has installed
sys.path.insert(0, str(REPO_ROOT))

from table import Row, all_ok, print_rows  # noqa: E402

from streamproc.config.settings import (  # noqa: E402
    DetectorSettings,
    JsonlSinkSettings,
    Settings,
    SourceSettings,
    VideoSinkSettings,
)
from streamproc.core.frames import FrameResult  # noqa: E402
from streamproc.core.pictures import ArrayPicture, AvPicture  # noqa: E402
from streamproc.inference.blazeface import BlazeFaceDetector  # noqa: E402
from streamproc.inference.models import blazeface_model_path  # noqa: E402
from streamproc.pipeline.build import build_pipeline  # noqa: E402
from streamproc.sinks.video import encoder_options  # noqa: E402

log = logging.getLogger("bench_throughput")

MAKE_SAMPLE_PATH = REPO_ROOT / "samples" / "make_sample.py"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "streamproc-bench"

FPS = 30
SCENARIO = "moving"
SEED = 0
RESOLUTIONS: dict[str, tuple[int, int]] = {"720p": (1280, 720), "1080p": (1920, 1080)}
# From the performance issue: streamproc must beat the naive OpenCV loop by this much (c / b).
TARGETS: dict[str, float] = {"720p": 1.1, "1080p": 1.3}

VARIANTS: dict[str, str] = {
    "a": "decode only (PyAV)",
    "b": "OpenCV loop + detect",
    "c": "streamproc run",
    "d": "streamproc + video",
    "e": "x264 encoder alone",
}


# --------------------------------------------------------------------------------------------------
# Sample files


def load_make_sample() -> ModuleType:
    """Import ``samples/make_sample.py`` by path: ``samples/`` is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location("make_sample", MAKE_SAMPLE_PATH)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {MAKE_SAMPLE_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the module look themselves up here
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class Sample:
    """One generated clip and what it must contain."""

    name: str
    path: Path
    width: int
    height: int
    frames: int
    expected_faces: list[int]  # ground truth: faces fully inside the picture, per frame


def sample_file_name(width: int, height: int, seconds: float) -> str:
    """Cache key: every generation parameter plus a hash of the generator, so a changed
    ``make_sample.py`` never silently reuses clips rendered by an older version."""
    generator = hashlib.sha256(MAKE_SAMPLE_PATH.read_bytes()).hexdigest()[:10]
    return f"{SCENARIO}_{width}x{height}_{FPS}fps_{seconds:g}s_seed{SEED}_{generator}.mp4"


def ensure_sample(make_sample: ModuleType, cache_dir: Path, name: str, seconds: float) -> Sample:
    """Reuse the cached clip, or render it (to a temporary name first: an interrupted run must not
    leave a truncated file that the next run would trust)."""
    width, height = RESOLUTIONS[name]
    path = cache_dir / sample_file_name(width, height, seconds)
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        log.info("rendering %s sample (%dx%d, %g s) into %s", name, width, height, seconds, cache_dir)
        make_sample.make_sample(partial, width, height, FPS, seconds, SCENARIO, SEED)
        partial.replace(path)
    placements = make_sample.face_placements(width, height, FPS, seconds, SCENARIO, SEED)
    expected = [sum(face.face_inside(width, height) for face in faces) for faces in placements]
    return Sample(name, path, width, height, len(placements), expected)


def clip_720p(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The 720p30 clip, for the benchmarks that need one camera's worth of video."""
    return ensure_sample(load_make_sample(), cache_dir, "720p", 10.0).path


# --------------------------------------------------------------------------------------------------
# The variants


class Stopwatch:
    """Wall and process CPU time (all threads, FFmpeg's and LiteRT's included) of a block.

    CPU per frame is what decides throughput once every core is busy, as on a 2-core machine.
    """

    def __enter__(self) -> Stopwatch:
        self.seconds = self.cpu_seconds = 0.0
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu


@dataclasses.dataclass
class Measurement:
    """One timed pass over one clip."""

    frames: int
    seconds: float
    cpu_seconds: float
    faces: list[int] | None = None  # faces found per frame, where the variant reports them
    stage_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # mean ms per frame of each stage
    problem: str | None = None
    boxes: list[np.ndarray] | None = None  # c and d: the detector's boxes per frame, unrounded

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        return self.cpu_seconds * 1000.0 / self.frames if self.frames else float("nan")


def run_decode(sample: Sample) -> Measurement:
    """a: the decoder alone, as streamproc's FileSource configures it."""
    with av.open(str(sample.path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = 0
        with Stopwatch() as clock:
            for _frame in container.decode(stream):
                frames += 1
    return Measurement(frames, clock.seconds, clock.cpu_seconds)


def run_opencv_loop(sample: Sample, detector: BlazeFaceDetector) -> Measurement:
    """b: one thread, one frame at a time, OpenCV defaults; stage times kept for the profile notes.

    The four ``perf_counter`` calls per frame cost well under a microsecond: noise at 2-4 ms a frame.
    """
    capture = cv2.VideoCapture(str(sample.path))
    if not capture.isOpened():
        return Measurement(0, 0.0, 0.0, problem=f"OpenCV cannot open {sample.path}")
    faces: list[int] = []
    totals = dict.fromkeys(("read", "cvtColor", "detect"), 0.0)
    with Stopwatch() as clock:
        while True:
            t0 = time.perf_counter()
            ok, bgr = capture.read()
            if not ok:
                break
            t1 = time.perf_counter()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t2 = time.perf_counter()
            faces.append(len(detector.detect_image(rgb)))
            t3 = time.perf_counter()
            totals["read"] += t1 - t0
            totals["cvtColor"] += t2 - t1
            totals["detect"] += t3 - t2
    capture.release()
    count = len(faces)
    stage_ms = {name: total * 1000.0 / max(count, 1) for name, total in totals.items()}
    return Measurement(count, clock.seconds, clock.cpu_seconds, faces, stage_ms)


def pipeline_settings(sample: Sample, workdir: Path, video: bool) -> tuple[Settings, Path]:
    """c/d settings, as ``streamproc run FILE --events ... [--out-video ...] --no-progress`` builds them."""
    events = workdir / f"{sample.name}.jsonl"
    events.unlink(missing_ok=True)  # the JSONL sink appends: start each pass from an empty file
    sinks: list[JsonlSinkSettings | VideoSinkSettings] = [JsonlSinkSettings(type="jsonl", path=events)]
    if video:
        sinks.append(VideoSinkSettings(type="video", path=workdir / f"{sample.name}.mp4"))
    settings = Settings(sources=[SourceSettings(url=str(sample.path))], sinks=sinks, progress=False)
    return settings, events


def run_pipeline(sample: Sample, workdir: Path, video: bool) -> Measurement:
    """c (and d with ``video``): fps = frames processed / wall time of ``Pipeline.run``."""
    settings, events = pipeline_settings(sample, workdir, video)
    pipeline = build_pipeline(settings)
    detect_ms: list[float] = []
    boxes: list[np.ndarray] = []

    def on_result(result: FrameResult) -> None:
        detect_ms.append(result.inference_ms)
        boxes.append(result.detections.boxes)

    with Stopwatch() as clock:
        report = pipeline.run(progress=on_result)
    problems = report.problems()
    stage_ms = {"detect": statistics.fmean(detect_ms)} if detect_ms else {}
    return Measurement(
        report.frames_processed,
        clock.seconds,
        clock.cpu_seconds,
        faces=read_face_counts(events),
        stage_ms=stage_ms,
        problem="; ".join(problems) if problems else None,
        boxes=boxes,
    )


def reference_boxes(sample: Sample, detector: BlazeFaceDetector) -> list[np.ndarray]:
    """The unoptimised path: one thread, FFmpeg's default decoder settings, a new swscale context
    per frame (``to_ndarray``), the detector's own input buffer; what c must reproduce exactly."""
    boxes = []
    with av.open(str(sample.path)) as container:
        for frame in container.decode(video=0):
            boxes.append(detector.detect(detector.prepare(AvPicture(frame))).boxes)
    return boxes


def box_difference(got: list[np.ndarray] | None, expected: list[np.ndarray]) -> float:
    """Largest difference of any box coordinate (pixels); inf when frames or face counts differ."""
    if got is None or len(got) != len(expected):
        return float("inf")
    worst = 0.0
    for a, b in zip(got, expected, strict=True):
        if a.shape != b.shape:
            return float("inf")
        if a.size:
            worst = max(worst, float(np.abs(a - b).max()))
    return worst


def encode_alone(sample: Sample, workdir: Path) -> Measurement:
    """e: the video sink's encoder by itself (same libx264 options) on the clip's decoded frames
    (decoded before the clock starts): the cost that ``--out-video`` cannot avoid."""
    with av.open(str(sample.path)) as container:
        frames = list(container.decode(video=0))
    with av.open(str(workdir / f"{sample.name}-alone.mp4"), mode="w") as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = sample.width, sample.height, "yuv420p"
        stream.options = encoder_options(VideoSinkSettings(type="video", path=Path("unused.mp4")))
        with Stopwatch() as clock:
            for frame in frames:
                output.mux(stream.encode(frame))
            output.mux(stream.encode(None))
    return Measurement(len(frames), clock.seconds, clock.cpu_seconds)


def read_face_counts(events: Path) -> list[int]:
    """Faces per frame from a JSONL sink file, in frame order."""
    counts: dict[int, int] = {}
    with events.open(encoding="utf-8") as stream:
        for line in stream:
            record = json.loads(line)
            if record.get("type") == "frame":
                counts[record["frame"]] = len(record["faces"])
    return [counts[index] for index in sorted(counts)]


# --------------------------------------------------------------------------------------------------
# Invoke overhead: is detect a fair stand-in for calling LiteRT directly?


def invoke_overhead(detector: BlazeFaceDetector, sample: Sample, iterations: int = 200) -> dict[str, float]:
    """Mean ms of a bare ``Interpreter.invoke`` (the brief's hand-written baseline) against the
    detector's whole ``detect`` on a prepared input: the difference is what decoding and
    post-processing add, so a reader can see b is not handicapped by using it."""
    rng = np.random.default_rng(SEED)
    picture = rng.integers(0, 256, (sample.height, sample.width, 3), dtype=np.uint8)
    model_input = detector.prepare(ArrayPicture(picture))
    interpreter = Interpreter(model_path=str(blazeface_model_path("short")), num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    outputs = [detail["index"] for detail in interpreter.get_output_details()]
    tensor = np.full((1, detector.input_size, detector.input_size, 3), -1.0, np.float32)

    def bare() -> None:
        interpreter.set_tensor(index, tensor)
        interpreter.invoke()
        for output in outputs:
            interpreter.get_tensor(output)

    def whole() -> None:
        detector.detect(model_input)

    return {"bare_invoke": mean_ms(bare, iterations), "detect": mean_ms(whole, iterations)}


def mean_ms(call: Callable[[], object], iterations: int) -> float:
    call()  # warm-up: XNNPACK packs weights on the first invoke
    started = time.perf_counter()
    for _ in range(iterations):
        call()
    return (time.perf_counter() - started) * 1000.0 / iterations


# --------------------------------------------------------------------------------------------------
# Running, summarising, printing


@dataclasses.dataclass
class Series:
    """All repeats of one variant on one clip."""

    resolution: str
    variant: str
    expected_frames: int
    runs: list[Measurement] = dataclasses.field(default_factory=list)

    @property
    def fps(self) -> list[float]:
        return [run.fps for run in self.runs]

    @property
    def best(self) -> float:
        return max(self.fps)

    @property
    def median(self) -> float:
        return statistics.median(self.fps)

    @property
    def cpu_ms(self) -> float:
        """Median CPU ms per frame: steadier than wall time under load, and the budget on 2 cores."""
        return statistics.median(run.cpu_ms_per_frame for run in self.runs)

    @property
    def failures(self) -> list[str]:
        found = []
        for number, run in enumerate(self.runs, 1):
            if run.frames != self.expected_frames:
                found.append(f"run {number}: {run.frames} of {self.expected_frames} frames")
            if run.problem:
                found.append(f"run {number}: {run.problem}")
        return found

    def stage_ms(self) -> dict[str, float]:
        """Per-stage ms/frame of the fastest run (the one least disturbed by other load)."""
        return max(self.runs, key=lambda run: run.fps).stage_ms


def measure(samples: Sequence[Sample], repeats: int, workdir: Path) -> dict[tuple[str, str], Series]:
    """Every variant on every clip, ``repeats`` times, interleaved so drifting load hits all alike."""
    defaults = DetectorSettings()
    detector = BlazeFaceDetector(
        variant=defaults.model,
        min_score=defaults.min_score,
        nms_iou=defaults.nms_iou,
        num_threads=defaults.threads,
    )
    runners: dict[str, Callable[[Sample], Measurement]] = {
        "a": run_decode,
        "b": lambda sample: run_opencv_loop(sample, detector),
        "c": lambda sample: run_pipeline(sample, workdir, video=False),
        "d": lambda sample: run_pipeline(sample, workdir, video=True),
        "e": lambda sample: encode_alone(sample, workdir),
    }
    series = {
        (sample.name, variant): Series(sample.name, variant, sample.frames)
        for sample in samples
        for variant in runners
    }
    for repeat in range(1, repeats + 1):
        for sample in samples:
            for variant, runner in runners.items():
                result = runner(sample)
                series[sample.name, variant].runs.append(result)
                log.info(
                    "repeat %d/%d %-5s %s %-20s %7.1f fps",
                    repeat,
                    repeats,
                    sample.name,
                    variant,
                    VARIANTS[variant],
                    result.fps,
                )
    return series


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How often two face counts per frame agree, and how often each matches the ground truth."""

    frames: int
    same_count: float
    opencv_correct: float
    pipeline_correct: float


def agreement(sample: Sample, opencv: list[int] | None, pipeline: list[int] | None) -> Agreement | None:
    """Different resamplers (OpenCV INTER_LINEAR vs swscale bilinear) give slightly different inputs,
    so this is reported, never failed on."""
    if not opencv or not pipeline:
        return None
    n = min(len(opencv), len(pipeline), len(sample.expected_faces))
    truth = sample.expected_faces[:n]
    same = sum(a == b for a, b in zip(opencv[:n], pipeline[:n], strict=True))
    return Agreement(
        frames=n,
        same_count=same / n,
        opencv_correct=sum(a == t for a, t in zip(opencv[:n], truth, strict=True)) / n,
        pipeline_correct=sum(b == t for b, t in zip(pipeline[:n], truth, strict=True)) / n,
    )


def environment() -> dict[str, Any]:
    """What the numbers depend on: the machine and the library versions."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "av": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", "?"),
        "cv2": cv2.__version__,
        "cv2_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
        "ai-edge-litert": importlib.metadata.version("ai-edge-litert"),
    }


@dataclasses.dataclass
class Report:
    """Everything one benchmark run found, for the printed table and the JSON file."""

    env: dict[str, Any]
    samples: list[Sample]
    series: dict[tuple[str, str], Series]
    invoke_ms: dict[str, float]
    repeats: int
    seconds: float
    reference: dict[str, list[np.ndarray]]  # per clip: boxes of the unoptimised path, per frame

    def rows(self, sample: Sample) -> dict[str, Series]:
        return {variant: self.series[sample.name, variant] for variant in VARIANTS}

    def ratios(self, sample: Sample, pick: Callable[[Series], float]) -> dict[str, float]:
        rows = self.rows(sample)
        a, b, c, d = (pick(rows[variant]) for variant in "abcd")
        return {"c/b": ratio(c, b), "c/a": ratio(c, a), "d/c": ratio(d, c)}

    def agreement(self, sample: Sample) -> Agreement | None:
        """Compares the first repeat of b and c: detections do not depend on timing."""
        rows = self.rows(sample)
        return agreement(sample, rows["b"].runs[0].faces, rows["c"].runs[0].faces)

    def box_difference(self, sample: Sample) -> float:
        """Worst box difference between any run of c or d and the unoptimised path (pixels)."""
        runs = [run for variant in ("c", "d") for run in self.rows(sample)[variant].runs]
        return max(box_difference(run.boxes, self.reference[sample.name]) for run in runs)

    @property
    def failed(self) -> bool:
        return any(row.failures for row in self.series.values()) or not all_ok(target_rows(self))


BOX_TOLERANCE = 1e-3  # pixels: "the same boxes" as the unoptimised path


def target_rows(report: Report) -> list[Row]:
    """Targets 1 (file throughput) and 5 (annotated output) of the performance issue."""
    rows: list[Row] = []
    for sample in report.samples:
        name, series = sample.name, report.rows(sample)
        best, median = report.ratios(sample, lambda r: r.best), report.ratios(sample, lambda r: r.median)
        target = TARGETS[name]
        rows.append(
            Row(
                f"{name} file fps c/b (median of interleaved runs)",
                f"{median['c/b']:.2f} (best {best['c/b']:.2f})",
                f">= {target:g}",
                median["c/b"] >= target,
            )
        )
        complete = not (series["c"].failures or series["d"].failures)
        rows.append(Row(f"{name} every frame processed (c, d)", "yes" if complete else "no", "all", complete))
        difference = report.box_difference(sample)
        rows.append(
            Row(
                f"{name} boxes vs unoptimised path (max |diff| px)",
                f"{difference:.1e}",
                f"<= {BOX_TOLERANCE:g}",
                difference <= BOX_TOLERANCE,
            )
        )
        rows.append(
            Row(f"{name} --out-video on/off fps (d/c)", f"{series['d'].median:.0f}/{series['c'].median:.0f}")
        )
        extra = series["d"].cpu_ms - series["c"].cpu_ms
        encoder = series["e"].cpu_ms
        rows.append(
            Row(
                f"{name} --out-video CPU ms/frame / encoder alone",
                f"{extra:.1f}/{encoder:.1f} = {extra / encoder:.2f}",
                "<= 1.0",
                extra <= encoder,
            )
        )
    return rows


def print_report(report: Report) -> None:
    """The header, fps table, ratios, detection agreement and stage costs, on stdout."""
    for section in (print_header, print_table, print_ratios, print_detections, print_stages):
        print()
        section(report)
    print()
    print_rows(target_rows(report))


def print_header(report: Report) -> None:
    env = report.env
    print(
        f"CPUs: {env['cpu_count']} (usable {env['cpu_affinity']}), {env['machine']}, "
        f"Python {env['python']}, OpenCV threads {env['cv2_threads']}"
    )
    print(
        f"av {env['av']} (FFmpeg {env['ffmpeg']}), cv2 {env['cv2']}, numpy {env['numpy']}, "
        f"ai-edge-litert {env['ai-edge-litert']}"
    )
    frames = report.samples[0].frames
    print(f"clips: H.264 {FPS} fps, scenario {SCENARIO!r}, {frames} frames each; {report.repeats} repeats")


def print_table(report: Report) -> None:
    print(
        f"{'res':<6} {'variant':<24} {'best fps':>9} {'median':>9} {'cpu ms/f':>9}  {'runs (fps)':<16} check"
    )
    for sample in report.samples:
        for variant, row in report.rows(sample).items():
            runs = " ".join(f"{fps:.0f}" for fps in row.fps)
            check = "ok" if not row.failures else "FAIL " + "; ".join(row.failures)
            print(
                f"{sample.name:<6} {variant} {VARIANTS[variant]:<22} {row.best:>9.1f} {row.median:>9.1f} "
                f"{row.cpu_ms:>9.2f}  {runs:<16} {check}"
            )


def print_ratios(report: Report) -> None:
    for sample in report.samples:
        best = report.ratios(sample, lambda row: row.best)
        median = report.ratios(sample, lambda row: row.median)
        target = TARGETS[sample.name]
        verdict = "meets target" if best["c/b"] >= target else "BELOW target"
        print(
            f"{sample.name:<6} c/b {best['c/b']:.2f} (median {median['c/b']:.2f}; {verdict} {target:.1f})"
            f"   c/a {best['c/a']:.2f}   d/c {best['d/c']:.2f}"
        )


def print_detections(report: Report) -> None:
    for sample in report.samples:
        found = report.agreement(sample)
        if found is None:
            print(f"{sample.name:<6} detections: not compared (a run reported no faces)")
            continue
        print(
            f"{sample.name:<6} detections: face count c == b on {found.same_count:.1%} of {found.frames} "
            f"frames; count == ground truth: b {found.opencv_correct:.1%}, c {found.pipeline_correct:.1%}"
        )


def print_stages(report: Report) -> None:
    for sample in report.samples:
        rows = report.rows(sample)
        b_parts = "  ".join(f"{name} {ms:.2f}" for name, ms in rows["b"].stage_ms().items())
        c_detect = rows["c"].stage_ms().get("detect", float("nan"))
        print(f"{sample.name:<6} ms/frame  b: {b_parts}  |  c: detect {c_detect:.2f}")
    invoke = report.invoke_ms
    print(
        f"invoke alone: bare Interpreter {invoke['bare_invoke']:.2f} ms, "
        f"detect (invoke+decode+NMS) {invoke['detect']:.2f} ms"
    )


def report_json(report: Report) -> dict[str, Any]:
    """Everything in the printed report, machine-readable."""
    per_resolution: dict[str, Any] = {}
    for sample in report.samples:
        found = report.agreement(sample)
        per_resolution[sample.name] = {
            "file": str(sample.path),
            "frames": sample.frames,
            "variants": {
                variant: {
                    "title": VARIANTS[variant],
                    "fps": [round(fps, 2) for fps in row.fps],
                    "best": round(row.best, 2),
                    "median": round(row.median, 2),
                    "cpu_ms_per_frame": round(row.cpu_ms, 3),
                    "failures": row.failures,
                    "stage_ms": {name: round(ms, 3) for name, ms in row.stage_ms().items()},
                }
                for variant, row in report.rows(sample).items()
            },
            "ratios_best": {k: round(v, 3) for k, v in report.ratios(sample, lambda r: r.best).items()},
            "ratios_median": {k: round(v, 3) for k, v in report.ratios(sample, lambda r: r.median).items()},
            "target_c/b": TARGETS[sample.name],
            "detections": None if found is None else dataclasses.asdict(found),
        }
    return {
        "environment": report.env,
        "parameters": {
            "seconds": report.seconds,
            "repeats": report.repeats,
            "fps": FPS,
            "scenario": SCENARIO,
        },
        "invoke_ms": {name: round(ms, 3) for name, ms in report.invoke_ms.items()},
        "encode_alone_cpu_ms": {
            sample.name: round(report.rows(sample)["e"].cpu_ms, 3) for sample in report.samples
        },
        "targets": [dataclasses.asdict(row) for row in target_rows(report)],
        "resolutions": per_resolution,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10 = 300 frames)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per variant (default 3)")
    parser.add_argument(
        "--resolutions",
        nargs="+",
        choices=list(RESOLUTIONS),
        default=list(RESOLUTIONS),
        help="clips to run (default: all)",
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"where generated clips are kept and reused (default {DEFAULT_CACHE_DIR})",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def benchmark(resolutions: Sequence[str], seconds: float, repeats: int, cache_dir: Path) -> Report:
    """Every variant on every clip, then the reference detections."""
    make_sample = load_make_sample()
    samples = [ensure_sample(make_sample, cache_dir, name, seconds) for name in resolutions]
    with tempfile.TemporaryDirectory(prefix="streamproc-bench-") as workdir:
        series = measure(samples, repeats, Path(workdir))
    detector = BlazeFaceDetector("short")
    return Report(
        env=environment(),
        samples=samples,
        series=series,
        invoke_ms=invoke_overhead(detector, samples[0]),
        repeats=repeats,
        seconds=seconds,
        reference={sample.name: reference_boxes(sample, detector) for sample in samples},
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("streamproc").setLevel(logging.WARNING)  # no per-run source/sink chatter
    report = benchmark(args.resolutions, args.seconds, args.repeats, args.cache_dir)
    sys.stderr.flush()  # keep the progress log above the table when both go to a terminal
    print_report(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report_json(report), indent=2) + "\n", encoding="utf-8")
        log.info("wrote %s", args.out)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
