"""Keras (``.keras``/``.h5``) and SavedModel runtimes. Importing this module imports TensorFlow.

Only :func:`streamproc.inference.runtime.load_model` imports it, and only for such a model, so runs
with TFLite models alone start in a fraction of the time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamproc.core.errors import ModelError, first_line

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users
try:
    import tensorflow as tf
except ImportError:  # pragma: no cover - depends on the installation
    raise ModelError(
        "Keras and SavedModel models need TensorFlow, which is not installed: "
        "pip install 'streamproc[tensorflow]', or convert the model to .tflite"
    ) from None

log = logging.getLogger(__name__)


class TfModel:
    """A TensorFlow callable with one image input, behind the same interface as TfliteModel."""

    def __init__(
        self, path: Path, run: Callable[[Any], Any], input_shape: tuple[int | None, ...], dtype: Any
    ) -> None:
        self.path = path
        self._run = run
        if len(input_shape) < 2:
            raise ModelError(f"{path} takes input of shape {input_shape}, not a batch of images")
        self._dynamic = input_shape[0] is None
        self._shape = (1, *(int(d) if d is not None else -1 for d in input_shape[1:]))
        self._dtype = np.dtype(tf.as_dtype(dtype).as_numpy_dtype)
        probe = self.invoke(np.zeros(tuple(max(d, 1) for d in self._shape), self._dtype))
        self._output_shapes = [(1, *output.shape[1:]) for output in probe]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def input_dtype(self) -> np.dtype:
        return self._dtype

    @property
    def input_quantization(self) -> tuple[float, int]:
        return 0.0, 0

    @property
    def dynamic_batch(self) -> bool:
        return self._dynamic

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return list(self._output_shapes)

    def output_quantization(self, index: int) -> tuple[float, int]:
        return 0.0, 0

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]:
        result = self._run(tf.constant(tensor))
        if isinstance(result, dict):
            result = [result[key] for key in sorted(result)]
        elif not isinstance(result, list | tuple):
            result = [result]
        return [np.asarray(output) for output in result]


def load_tf_model(path: Path, num_threads: int = 1) -> TfModel:
    """Load a ``.keras``/``.h5`` file or a SavedModel folder."""
    limit_threads(num_threads)
    if not path.exists():
        raise ModelError(f"model {path} does not exist: check the path")
    if path.is_dir():
        return _load_saved_model(path)
    import keras

    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(
            f"{path} is not a model Keras can load ({first_line(exc)}): check the file"
        ) from None
    if len(model.inputs) != 1:
        raise ModelError(f"{path} has {len(model.inputs)} inputs, expected 1 image input")
    spec = model.inputs[0]
    log.debug("loaded Keras model %s: input %s", path, spec.shape)
    return TfModel(path, lambda x: model(x, training=False), tuple(spec.shape), spec.dtype)


def _load_saved_model(path: Path) -> TfModel:
    try:
        loaded = tf.saved_model.load(str(path))
        function = loaded.signatures["serving_default"]
    except Exception as exc:
        raise ModelError(
            f"{path} is not a SavedModel with a serving_default signature ({first_line(exc)})"
        ) from None
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1:
        raise ModelError(f"{path} has {len(inputs)} inputs, expected 1 image input")
    ((name, spec),) = inputs.items()
    log.debug("loaded SavedModel %s: input %s %s", path, name, spec.shape)
    return TfModel(path, lambda x: function(**{name: x}), tuple(spec.shape), spec.dtype)


def limit_threads(num_threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by an earlier model: keep its settings
        pass
