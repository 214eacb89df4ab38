"""Detection for the HTTP API, off the event loop: worker threads, each with its own interpreters
(a detector and every API classifier) and its own decoder process (decoder.py: a CPU budget per
image), fed by one bounded queue. A worker takes every request waiting (up to ``batch``), detects
faces in each, then classifies the crops of all of them in one call per model: concurrent requests
share the classifier invoke where the model takes a batch."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from streamproc.config.settings import ClassifierSettings, RedactSettings, Settings
from streamproc.core.classification import Classification
from streamproc.core.frames import Detections
from streamproc.core.pictures import ArrayPicture
from streamproc.inference.classifiers import open_classifier
from streamproc.inference.detector import Detector
from streamproc.inference.detectors import open_detector
from streamproc.inference.models import ModelRegistry
from streamproc.media.crops import square_crop
from streamproc.media.still_images import ImageHeader
from streamproc.pipeline.build import build_detector
from streamproc.privacy.build import redacting_detector
from streamproc.privacy.photo import RedactRequest, redact_image
from streamproc.server.decoder import Decoder
from streamproc.stages.classify import ClassifierRunner

log = logging.getLogger(__name__)

MAX_TOP_K = 100


@dataclass(frozen=True)
class DetectRequest:
    data: bytes
    classify: str | None = None  # faces, image or both
    model: str | None = None  # a key of the workers' classifiers
    top_k: int = 5
    min_score: float = 0.0
    redact: RedactRequest | None = None  # POST /api/v1/redact: the image back, faces covered


@dataclass
class _Job:
    request: DetectRequest
    future: Future
    queued_at: float = field(default_factory=time.perf_counter)
    header: ImageHeader | None = None
    size: tuple[int, int] = (0, 0)  # width, height as decoded
    detections: Detections | None = None
    pictures: list[np.ndarray] = field(default_factory=list)
    results: list[Classification] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class QueueFull(Exception):
    """Every queue slot is taken: answer 503 and let the client come back."""


class DetectWorker:
    """One thread's interpreters. Not thread-safe: each worker thread has its own."""

    def __init__(
        self,
        detector: Detector,
        classifiers: Mapping[str, ClassifierRunner],
        decoder: Decoder,
        margin: float,
        redactor: Detector | None = None,
    ) -> None:
        self.detector = detector
        self.classifiers = dict(classifiers)
        self.decoder = decoder
        self.margin = margin
        self.redactor = redactor  # redaction's detector: full-range, down to redact.min_score

    def run(self, jobs: list[_Job]) -> None:
        """Answer every job's future: detect in each, then classify per model across the jobs."""
        found = []
        for job in jobs:
            if job.request.redact is not None:
                self._redact(job)
                continue
            try:
                self._detect(job)
                found.append(job)
            except Exception as exc:  # a bad image fails its own request only
                job.future.set_exception(exc)
        groups: dict[int, tuple[ClassifierRunner, list[_Job]]] = {}  # by model, whatever it was called
        for job in found:
            if job.pictures:
                runner = self.classifiers[job.request.model or ""]
                groups.setdefault(id(runner), (runner, []))[1].append(job)
        for runner, group in groups.values():
            self._classify(runner, group)
        for job in found:
            job.future.set_result(_answer(job))

    def _detect(self, job: _Job) -> None:
        request, started = job.request, time.perf_counter()
        job.timing["queue"] = started - job.queued_at
        decoded_image = self.decoder.decode(request.data, token=job.future)
        bgr, job.header, job.warnings = decoded_image.bgr, decoded_image.header, decoded_image.warnings
        decoded = time.perf_counter()
        picture = ArrayPicture(bgr)  # upright: its size may differ from the header's (EXIF)
        job.size = (picture.width, picture.height)
        detections = self.detector.detect(self.detector.prepare(picture))
        job.detections = detections[detections.scores >= request.min_score]
        detected = time.perf_counter()
        job.timing["decode"], job.timing["detect"] = decoded - started, detected - decoded
        if request.classify in ("faces", "both"):
            job.pictures = [square_crop(bgr, box, self.margin) for box in job.detections.boxes]
        if request.classify in ("image", "both"):
            job.pictures.append(bgr)
        job.timing["crop"] = time.perf_counter() - detected

    def _redact(self, job: _Job) -> None:
        assert job.request.redact is not None and self.redactor is not None
        try:
            decoded = self.decoder.decode(job.request.data, token=job.future)
            answer = redact_image(decoded.bgr, decoded.header.format, self.redactor, job.request.redact)
            answer["warnings"] = decoded.warnings
        except Exception as exc:  # a bad image fails its own request only
            job.future.set_exception(exc)
            return
        job.future.set_result(answer)

    @staticmethod
    def _classify(runner: ClassifierRunner, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        pictures = [picture for job in jobs for picture in job.pictures]
        results = runner.classify(pictures, 0)
        spent = time.perf_counter() - started
        at = 0
        for job in jobs:
            count = len(job.pictures)
            job.results = [
                replace(result, labels=result.labels[: job.request.top_k])
                for result in results[at : at + count]
            ]
            job.timing["classify"] = spent
            job.timing["batch"] = len(pictures)
            at += count


def _answer(job: _Job) -> dict[str, Any]:
    """The JSON answer of one request."""
    assert job.header is not None and job.detections is not None
    request = job.request
    faces = job.detections.to_records()
    results = iter(job.results)
    if request.classify in ("faces", "both"):
        for face in faces:
            face["classification"] = _labels(next(results))
    answer: dict[str, Any] = {
        "width": job.size[0],
        "height": job.size[1],
        "format": job.header.format,
        "faces": faces,
        "warnings": job.warnings,
    }
    if request.classify in ("image", "both"):
        answer["image_classification"] = _labels(next(results))
    answer["timing_ms"] = {
        name: round(value * 1000.0, 2) if name != "batch" else value for name, value in job.timing.items()
    }
    return answer


def _labels(result: Classification) -> dict[str, Any]:
    return {"model": result.model, "top_k": [label.to_dict() for label in result.labels]}


class DetectPool:
    """Worker threads behind one bounded queue."""

    def __init__(
        self,
        make_worker: Callable[[], DetectWorker],
        workers: int,
        queue_size: int,
        batch: int,
        redact: RedactSettings | None = None,
    ) -> None:
        self.redact = redact or RedactSettings()  # defaults of POST /api/v1/redact
        self._queue: queue.Queue[_Job | None] = queue.Queue(queue_size)
        self._batch = batch
        self.workers = [make_worker() for _ in range(workers)]  # loaded now: bad models fail at start
        # the detector's own threshold (BlazeFace's per-model default unless configured): requests
        # may ask for more, not less
        self.min_score = float(getattr(self.workers[0].detector, "min_score", 0.0))
        self.redact_min_score = float(getattr(self.workers[0].redactor, "min_score", 0.0))
        self._threads = [
            threading.Thread(target=self._loop, args=(worker,), name=f"detect-{i}", daemon=True)
            for i, worker in enumerate(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def models(self) -> list[str]:
        """The classifiers' names (a model configured by path is also accepted by that path)."""
        return sorted({runner.classifier.name for runner in self.workers[0].classifiers.values()})

    def accepts(self, model: str) -> bool:
        return bool(model) and model in self.workers[0].classifiers

    def queued(self) -> int:
        """Requests waiting for a worker."""
        return self._queue.qsize()

    def submit(self, request: DetectRequest) -> Future:
        """Queue a request; raises QueueFull when no slot is free."""
        job = _Job(request, Future())
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None
        return job.future

    def cancel(self, future: Future) -> None:
        """Its client has gone: drop the request if it still waits, stop its decode if under way."""
        if not future.cancel():
            for worker in self.workers:
                worker.decoder.interrupt(future)

    def stop(self) -> None:
        """End every decode under way and refuse later ones (DecodeStopped): the server is stopping."""
        for worker in self.workers:
            worker.decoder.close()

    def close(self) -> None:
        self.stop()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _loop(self, worker: DetectWorker) -> None:
        stopping = False
        while not stopping:
            jobs: list[_Job] = []
            item = self._queue.get()
            while item is not None:
                if item.future.set_running_or_notify_cancel():  # False: the client is gone
                    jobs.append(item)
                if len(jobs) >= self._batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = item is None
            try:
                worker.run(jobs)
            except Exception as exc:  # a model failing must not end the worker
                log.error(
                    "detection API: inference failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG)
                )
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)


def open_detect_pool(settings: Settings) -> DetectPool:
    """The API's workers: the configured detector, and each API model as a classifier (the first,
    or the classifier section's when enabled, answers requests that name none)."""
    api, classify = settings.http.api, settings.classifier
    names = [classify.model] if classify.enabled else []
    names += [m for m in dict.fromkeys(api.models) if m not in names]  # the classifier section's may be off
    one_thread = settings.detector.model_copy(update={"threads": 1})  # workers run side by side
    registry = ModelRegistry.load(settings.models_dir) if names else None

    def make_worker() -> DetectWorker:
        classifiers: dict[str, ClassifierRunner] = {}
        for name in names:
            own = classify if classify.enabled and name == classify.model else ClassifierSettings(model=name)
            assert registry is not None
            model = open_classifier(own.model_copy(update={"top_k": MAX_TOP_K, "threads": 1}), registry)
            classifiers[name] = classifiers[model.name] = ClassifierRunner(model)
            classifiers.setdefault("", classifiers[name])
        detector = build_detector(settings.model_copy(update={"detector": one_thread}))
        redactor = open_detector(redacting_detector(settings.model_copy(update={"detector": one_thread})))
        decoder = Decoder(api.cpu_budget_s, int(api.max_megapixels * 1e6))
        return DetectWorker(detector, classifiers, decoder, classify.faces.margin, redactor)

    pool = DetectPool(make_worker, api.workers, api.queue_size, api.batch, settings.redact)
    log.info(
        "detection API: %d worker(s), queue %d, models: %s",
        api.workers,
        api.queue_size,
        ", ".join(pool.models) or "none (faces only)",
    )
    return pool
