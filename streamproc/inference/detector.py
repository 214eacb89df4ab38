"""The detector protocol: one preprocessing path for photos and video frames alike.

Detection is two steps so that the expensive pixel work can leave the inference thread:

- ``prepare(picture)`` turns a decoded picture into the model's input. It must be thread-safe: the
  pipeline calls it on each source's capture thread, overlapping with inference of earlier frames.
- ``detect(model_input)`` runs the model and decodes its output into full-picture pixels. It runs on
  the inference thread and need not be thread-safe.

A still image goes the same way (:func:`detect_image`), so a photo and a video frame with the
same pixels give the same faces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from streamproc.core.frames import Detections, ModelInput
from streamproc.core.pictures import ArrayPicture, Picture


class Detector(Protocol):
    """A face detector (see the module docstring for the threading contract)."""

    name: str

    def prepare(self, picture: Picture) -> ModelInput: ...

    def detect(self, model_input: ModelInput) -> Detections: ...


def detect_image(detector: Detector, rgb: np.ndarray) -> Detections:
    """Faces in an RGB uint8 picture of any size, through the same path as video frames."""
    return detector.detect(detector.prepare(ArrayPicture.from_rgb(rgb)))


def detect_all(detector: Detector, model_inputs: Sequence[ModelInput]) -> list[Detections]:
    """Each input's faces, in order. A detector may offer ``detect_many`` for a run of inputs (it
    runs its model on all of them, then decodes: see BlazeFaceDetector); any other detects one by one."""
    many = getattr(detector, "detect_many", None)
    if many is not None:
        return list(many(model_inputs))
    return [detector.detect(model_input) for model_input in model_inputs]


def check_input(detector: Detector, model_input: ModelInput) -> None:
    """A clear error when a model input reaches a detector that did not make it."""
    if model_input.detector != detector.name:
        raise ValueError(f"{detector.name} cannot take an input prepared by {model_input.detector}")
