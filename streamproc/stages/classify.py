"""Running the classifier on pictures cut from a frame: one call for all of a frame's pictures."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from streamproc.core.classification import Classification
from streamproc.inference.classifier import Classifier
from streamproc.media.crops import resize_to

InferenceTimer = Callable[[str, float], None]


class ClassifierRunner:
    """Resizes BGR pictures to the model's input, classifies them in one call and times it."""

    def __init__(self, classifier: Classifier, on_inference: InferenceTimer | None = None) -> None:
        self.classifier = classifier
        self._on_inference = on_inference

    def classify(self, pictures: Sequence[np.ndarray], frame_index: int) -> list[Classification]:
        if not pictures:
            return []
        if not self.classifier.resizes_itself:  # smaller first: the colour swap then costs less
            width, height = self.classifier.input_size
            pictures = [resize_to(picture, width, height) for picture in pictures]
        rgb = [cv2.cvtColor(picture, cv2.COLOR_BGR2RGB) for picture in pictures]
        started = time.perf_counter()
        results = self.classifier.classify(rgb, frame_index)
        if self._on_inference is not None:
            self._on_inference(self.classifier.name, (time.perf_counter() - started) * 1000.0)
        return results
