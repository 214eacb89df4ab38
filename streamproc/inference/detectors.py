"""Every kind of face detector, declared once: which ``detector.model`` values it takes and how it
opens one. A bundled BlazeFace variant (``short``, ``full``) and a TF.js BlazeFace ``model.json`` are
registered here; a new kind is its module plus one :func:`register_detector` line (and, for a new
way of naming models, a wider ``detector.model`` pattern in :mod:`streamproc.config.settings`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamproc.config.settings import DetectorSettings
from streamproc.core.errors import ConfigError
from streamproc.inference.detector import Detector
from streamproc.inference.models import BLAZEFACE_MODELS
from streamproc.inference.opencv_check import verify_opencv
from streamproc.inference.tfjs.modeljson import is_model_json


@dataclass(frozen=True)
class DetectorKind:
    name: str
    takes: Callable[[str], bool]  # whether a ``detector.model`` value names a model of this kind
    open: Callable[[DetectorSettings], Detector]  # loads and checks the model


DETECTOR_KINDS: dict[str, DetectorKind] = {}  # by name; the latest registered is asked first


def register_detector(kind: DetectorKind) -> None:
    if kind.name in DETECTOR_KINDS:
        raise ValueError(f"detector kind {kind.name!r} is registered twice")
    DETECTOR_KINDS[kind.name] = kind


def detector_kind(model: str) -> DetectorKind:
    """The kind that takes ``model``, the latest registered asked first (so a plug-in may take what a
    bundled kind would); none is a ConfigError at start-up."""
    for kind in reversed(DETECTOR_KINDS.values()):
        if kind.takes(model):
            return kind
    known = ", ".join(DETECTOR_KINDS)
    raise ConfigError(f"detector model {model!r} is of no registered kind (known kinds: {known})")


def open_detector(settings: DetectorSettings) -> Detector:
    verify_opencv()  # the input warp's arithmetic is OpenCV's: stop rather than drift
    return detector_kind(settings.model).open(settings)


def _bundled(settings: DetectorSettings) -> Detector:
    from streamproc.inference.blazeface import BlazeFaceDetector

    return BlazeFaceDetector(
        variant=settings.model,
        min_score=settings.min_score,
        nms_iou=settings.nms_iou,
        num_threads=settings.threads,
        device=settings.device,
    )


def _tfjs(settings: DetectorSettings) -> Detector:
    from streamproc.inference.tfjs.detector import tfjs_blazeface  # LiteRT, TensorFlow on first load

    model = Path(settings.model)
    return tfjs_blazeface(model, settings.min_score, settings.nms_iou, settings.threads, settings.device)


register_detector(DetectorKind("blazeface", BLAZEFACE_MODELS.__contains__, _bundled))
register_detector(DetectorKind("tfjs-blazeface", lambda model: is_model_json(Path(model)), _tfjs))
