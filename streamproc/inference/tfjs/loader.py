"""Load a TF.js model once per process: LiteRT on the cached TFLite conversion, else TensorFlow.

``runtime="auto"`` converts on first use (seconds, TensorFlow imported), caches the ``.tflite`` by
content hash and runs it on LiteRT; a model the converter refuses runs in TensorFlow, with a warning.
``"litert"`` and ``"tensorflow"`` force one path (tests compare both with TF.js's own outputs).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from streamproc.config.settings import Device
from streamproc.core.errors import ModelError
from streamproc.inference.runtime import Model, TfliteModel, check_device, first_line
from streamproc.inference.tfjs.convert import CACHE_ENV, CacheEntry, to_tflite
from streamproc.inference.tfjs.function import TfjsFunction
from streamproc.inference.tfjs.modeljson import ModelJson, read_model_json
from streamproc.inference.tfjs.weights import decode_weights

log = logging.getLogger(__name__)

Runtime = Literal["auto", "litert", "tensorflow"]

# Rebuilt TensorFlow functions by content hash: rebuilding (and importing TensorFlow) happens once.
_FUNCTIONS: dict[str, TfjsFunction] = {}
# Content hashes by the files' (path, size, mtime): a pool of interpreters hashes the weights once.
_HASHES: dict[tuple[tuple[str, int, int], ...], str] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class TfjsModel:
    """A loaded TF.js model: ``model`` runs it; its outputs come in ``output_names`` order."""

    model: Model
    output_names: list[str]
    runtime: Literal["litert", "tensorflow"]
    source: ModelJson


def load_tfjs_model(
    path: Path, num_threads: int = 1, runtime: Runtime = "auto", device: Device = "cpu"
) -> TfjsModel:
    """The TF.js model at ``path`` (model.json or its folder), ready to invoke."""
    check_device(device)
    source = read_model_json(path)
    with _LOCK:  # one conversion per model, however many workers load it at once
        entry = CacheEntry(_content_hash(source))
        if runtime != "tensorflow":
            converted = _converted(source, entry, num_threads, strict=runtime == "litert")
            if converted is not None:
                return converted
        function = _function(source, entry.key)
    from streamproc.inference.tf_runtime import TfModel, limit_threads  # imports TensorFlow

    limit_threads(num_threads)
    model = TfModel(source.path, function.run, function.input_shape, function.dtype)
    return TfjsModel(model, function.output_names, "tensorflow", source)


def _converted(source: ModelJson, entry: CacheEntry, num_threads: int, strict: bool) -> TfjsModel | None:
    """The model on LiteRT (converting it on first use), or None where it runs in TensorFlow only."""
    names = entry.output_names()
    if names is None:
        failure = entry.failure()
        if failure is not None and not strict:
            log.warning("%s does not convert to TFLite (%s): running it in TensorFlow", source.path, failure)
            return None
        started = time.perf_counter()
        function = _function(source, entry.key)
        try:
            data = to_tflite(function)
        except Exception as exc:  # the converter raises many types; any of them means "not convertible"
            reason = _reason(exc)
            if strict:
                raise ModelError(f"{source.path} does not convert to TFLite: {reason}") from None
            entry.store_failure(reason)
            log.warning("%s does not convert to TFLite (%s): running it in TensorFlow", source.path, reason)
            return None
        seconds = time.perf_counter() - started
        try:
            entry.store(data, function.output_names, seconds)
        except OSError as exc:
            raise ModelError(
                f"cannot write the converted model to {entry.tflite.parent} ({exc.strerror}): "
                f"set {CACHE_ENV} to a writable folder"
            ) from None
        names = function.output_names
        log.info("converted %s to TFLite in %.1f s (cached as %s)", source.path, seconds, entry.tflite)
    model = OrderedTfliteModel(entry.tflite, num_threads)
    if len(model.outputs) != len(names):
        raise ModelError(f"{entry.tflite} has {len(model.outputs)} outputs, expected {len(names)}: delete it")
    return TfjsModel(model, names, "litert", source)


def _content_hash(source: ModelJson) -> str:
    stats = [(str(path), path.stat()) for path in (source.path, *source.shards)]
    key = tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)
    if key not in _HASHES:
        _HASHES[key] = source.content_hash()
    return _HASHES[key]


def _reason(exc: BaseException) -> str:
    """The converter's own complaint ("'tf.Digamma' op is neither a custom op nor a flex op")."""
    text = first_line(exc)
    return text.rsplit("error: ", 1)[-1]


def _function(source: ModelJson, key: str) -> TfjsFunction:
    function = _FUNCTIONS.get(key)
    if function is None:
        if importlib.util.find_spec("tensorflow") is None:
            raise ModelError(
                f"{source.path} is not converted yet, and converting a TF.js model needs TensorFlow: "
                "pip install 'streamproc[tensorflow]'"
            )
        weights = decode_weights(source.read_weights(), source.weight_specs)
        if source.format == "graph-model":
            from streamproc.inference.tfjs.graph import graph_function  # imports TensorFlow

            function = graph_function(source, weights)
        else:
            from streamproc.inference.tfjs.layers import layers_function  # imports Keras

            function = layers_function(source, weights)
        _FUNCTIONS[key] = function
    return function


class OrderedTfliteModel(TfliteModel):
    """A converted model whose outputs are put back in the order of the function it came from.

    The converter names output k of the function ``Identity_k`` (``Identity`` for 0) or ``...:k``;
    the interpreter may list them in another order.
    """

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        super().__init__(path, num_threads)
        positions = [_position(str(detail["name"])) for detail in self.outputs]
        if sorted(positions) == list(range(len(positions))):
            order = sorted(range(len(positions)), key=positions.__getitem__)
            self.outputs = [self.outputs[i] for i in order]
            self._output_indices = [int(detail["index"]) for detail in self.outputs]


def _position(name: str) -> int:
    match = re.search(r"(?:Identity_|:)(\d+)$", name)
    return int(match.group(1)) if match else 0
