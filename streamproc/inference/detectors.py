"""The face detector the settings name: a bundled BlazeFace variant or a TF.js BlazeFace model.json."""

from __future__ import annotations

from pathlib import Path

from streamproc.config import DetectorSettings
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.opencv_check import verify_opencv
from streamproc.inference.tfjs.modeljson import is_model_json


def open_detector(settings: DetectorSettings) -> BlazeFaceDetector:
    verify_opencv()  # the input warp's arithmetic is OpenCV's: stop rather than drift
    if is_model_json(Path(settings.model)):
        from streamproc.inference.tfjs.detector import tfjs_blazeface  # LiteRT, TensorFlow on first load

        return tfjs_blazeface(Path(settings.model), settings.min_score, settings.nms_iou, settings.threads)
    return BlazeFaceDetector(
        variant=settings.model,
        min_score=settings.min_score,
        nms_iou=settings.nms_iou,
        num_threads=settings.threads,
    )
