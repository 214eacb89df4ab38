"""The classifier the settings name: a manifest model, a model file, or a TF.js ``model.json``."""

from __future__ import annotations

from pathlib import Path

from streamproc.config.settings import ClassifierSettings
from streamproc.inference.classifier import Classifier, open_model_classifier
from streamproc.inference.models import ModelRegistry
from streamproc.inference.opencv_check import verify_opencv
from streamproc.inference.tfjs.modeljson import is_model_json


def open_classifier(settings: ClassifierSettings, registry: ModelRegistry) -> Classifier:
    verify_opencv()  # enlarged crops are resized by OpenCV
    path = Path(settings.model)
    if settings.model not in registry.specs and is_model_json(path):
        from streamproc.inference.tfjs.classify import open_tfjs_classifier  # imports LiteRT/TensorFlow

        return open_tfjs_classifier(settings, path)
    return open_model_classifier(settings, registry)
