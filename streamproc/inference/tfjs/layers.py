"""A TF.js layers model as a Keras model. Importing this module imports Keras (and TensorFlow).

TF.js writes the Keras 2 topology (``batch_input_shape``, ``class_name: "Model"``); Keras 3 reads it
once the input shapes are spelled as Keras 3 expects. Weights are matched by ``layer/weight`` name.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from streamproc.core.errors import ModelError
from streamproc.inference.runtime import first_line
from streamproc.inference.tfjs.function import TfjsFunction
from streamproc.inference.tfjs.modeljson import ModelJson

log = logging.getLogger(__name__)

# Keras 3 renamed some variables; TF.js keeps the Keras 2 names.
_KERAS2_NAMES = {"kernel": ("depthwise_kernel",)}
_MODEL_CLASSES = {"Sequential": keras.Sequential, "Model": keras.Model, "Functional": keras.Model}


def layers_function(model: ModelJson, weights: Mapping[str, np.ndarray]) -> TfjsFunction:
    """The layers model rebuilt in Keras with its weights set, as a function of its single input."""
    config = keras3_config(model.topology.get("model_config", model.topology))
    try:
        keras_model = keras.models.model_from_json(json.dumps(config), custom_objects=_MODEL_CLASSES)
    except Exception as exc:  # Keras raises many types for a config it cannot build
        raise ModelError(f"{model.path}: Keras cannot build this layers model ({first_line(exc)})") from None
    _set_weights(model, keras_model, weights)
    if len(keras_model.inputs) != 1:
        raise ModelError(f"{model.path} has {len(keras_model.inputs)} inputs, expected 1 image input")
    spec = keras_model.inputs[0]
    names = list(getattr(keras_model, "output_names", None) or [keras_model.layers[-1].name])

    # Weights as arrays, not variables: traced, they become graph constants the TFLite converter keeps
    # (it leaves Keras 3 variables as unresolved READ_VARIABLE ops).
    trainable = [np.asarray(variable) for variable in keras_model.trainable_variables]
    fixed = [np.asarray(variable) for variable in keras_model.non_trainable_variables]

    def run(x: Any) -> list[Any]:
        result, _ = keras_model.stateless_call(trainable, fixed, x, training=False)
        return list(result) if isinstance(result, list | tuple) else [result]

    log.debug("%s: layers model, input %s, outputs %s", model.path, spec.shape, names)
    return TfjsFunction(run, tuple(spec.shape), spec.dtype, names, keras_model)


def keras3_config(config: Any) -> dict[str, Any]:
    """The TF.js (Keras 2 style) model config with its input shapes in Keras 3's form."""
    config = copy.deepcopy(config)
    if config.get("class_name") == "Sequential":
        inner = config["config"]
        layers = inner if isinstance(inner, list) else inner.get("layers", [])
        config["config"] = inner = (
            {"name": "sequential", "layers": layers} if isinstance(inner, list) else inner
        )
        first = layers[0]["config"] if layers else {}
        if layers and layers[0]["class_name"] != "InputLayer" and "batch_input_shape" in first:
            input_config = {
                "batch_shape": first.pop("batch_input_shape"),
                "dtype": first.get("dtype", "float32"),
            }
            layers.insert(0, {"class_name": "InputLayer", "config": input_config})
    for layer in _layers(config):
        layer_config = layer.get("config", {})
        if layer.get("class_name") == "InputLayer" and "batch_input_shape" in layer_config:
            layer_config["batch_shape"] = layer_config.pop("batch_input_shape")
    return config


def _layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    inner = config.get("config", {})
    return list(inner.get("layers", [])) if isinstance(inner, dict) else []


def _set_weights(model: ModelJson, keras_model: Any, weights: Mapping[str, np.ndarray]) -> None:
    unused = set(weights)
    for layer in keras_model.layers:
        for variable in layer.weights:
            names = [
                f"{layer.name}/{alias}" for alias in (variable.name, *_KERAS2_NAMES.get(variable.name, ()))
            ]
            name = next((candidate for candidate in names if candidate in weights), names[0])
            value = weights.get(name)
            if value is None:
                raise ModelError(f"{model.path}: the weight files have no {name!r}")
            if tuple(value.shape) != tuple(variable.shape):
                raise ModelError(
                    f"{model.path}: weight {name!r} has shape {value.shape}, the layer needs {variable.shape}"
                )
            variable.assign(value)
            unused.discard(name)
    if unused:
        raise ModelError(f"{model.path}: weights {sorted(unused)[:3]} belong to no layer of the model")
