"""Model runtimes behind one small interface: LiteRT for ``.tflite``, TensorFlow for Keras/SavedModel.

TensorFlow takes seconds to import, so it is imported only when such a model is loaded
(:mod:`streamproc.inference.tf_runtime`); a TFLite-only run never imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from streamproc.config.settings import Device
from streamproc.core.errors import ModelError, first_line

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5")


class Model(Protocol):
    """A loaded model with one image-like input, whatever runs it: the runtime protocol detectors
    and classifiers use (load with :func:`load_model`, read the input and output specs, ``invoke``
    on a batch stacked along the first axis)."""

    path: Path

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Input shape, batch first, as the model declares it (batch 1 when it is dynamic)."""
        ...

    @property
    def input_dtype(self) -> np.dtype: ...

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero_point) of the input; (0.0, 0) for float inputs."""
        ...

    @property
    def dynamic_batch(self) -> bool:
        """Whether one invoke may take several inputs stacked along the batch axis."""
        ...

    @property
    def output_shapes(self) -> list[tuple[int, ...]]: ...

    def output_quantization(self, index: int) -> tuple[float, int]: ...

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Runtime:
    """One way to run models, declared once: which model files it takes, on which devices, and how
    it loads one. A GPU runtime is one more :func:`register_runtime` line with its own devices."""

    name: str
    takes: Callable[[Path], bool]
    load: Callable[[Path, int], Model]  # (path, CPU threads)
    devices: frozenset[str] = frozenset({"cpu"})


RUNTIMES: dict[str, Runtime] = {}  # by name, asked in the order they were registered


def register_runtime(runtime: Runtime) -> None:
    if runtime.name in RUNTIMES:
        raise ValueError(f"runtime {runtime.name!r} is registered twice")
    RUNTIMES[runtime.name] = runtime


def load_model(path: Path, num_threads: int = 1, device: Device = "cpu") -> Model:
    """Load a model file with the first registered runtime that takes it on ``device``.

    ``.tflite`` runs on LiteRT; ``.keras``/``.h5`` files and SavedModel folders run on TensorFlow.
    """
    check_device(device)
    path = Path(path)
    for runtime in RUNTIMES.values():
        if device in runtime.devices and runtime.takes(path):
            return runtime.load(path, num_threads)
    if not path.exists():
        raise ModelError(f"model {path} does not exist: check the path or run `streamproc models list`")
    raise ModelError(
        f"{path} is not a model streamproc can run: use a .tflite file, a .keras/.h5 file or a "
        "SavedModel folder (with saved_model.pb)"
    )


def check_device(device: str) -> None:
    """A device no registered runtime serves is refused at start-up."""
    if not any(device in runtime.devices for runtime in RUNTIMES.values()):
        raise ModelError(f"no runtime for device {device!r} in this build: use device: cpu")


class OutputsView:
    """Base of a model seen with other outputs (some of them, or joined): the input is its own."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.path = model.path

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._model.input_shape

    @property
    def input_dtype(self) -> np.dtype:
        return self._model.input_dtype

    @property
    def input_quantization(self) -> tuple[float, int]:
        return self._model.input_quantization

    @property
    def dynamic_batch(self) -> bool:
        return self._model.dynamic_batch


class TfliteModel:
    """One loaded ``.tflite`` model with a single input.

    Not thread-safe: the interpreter holds per-call state, so give each worker thread its own.
    """

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            what = "is a directory, not a model file" if self.path.is_dir() else "does not exist"
            raise ModelError(f"{self.path} {what}: check the path or run `streamproc models fetch`")
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"{self.path} is not a TFLite model ({first_line(exc)}): "
                "check the path or run `streamproc models verify`"
            ) from exc
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelError(
                f"{self.path} has {len(inputs)} inputs, expected 1: "
                "check the path or run `streamproc models verify`"
            )
        self._input = inputs[0]
        self._input_index: int = int(self._input["index"])
        self._batch = int(self._input["shape"][0])
        self.outputs: list[dict[str, Any]] = self._interpreter.get_output_details()
        self._output_indices = [int(detail["index"]) for detail in self.outputs]
        log.debug(
            "loaded %s: input %s %s, %d outputs, %d threads",
            self.path,
            self.input_shape,
            self.input_dtype,
            len(self.outputs),
            num_threads,
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Input tensor shape, batch first (e.g. ``(1, 128, 128, 3)``)."""
        return tuple(int(d) for d in self._input["shape"])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero_point) of the input; (0.0, 0) for float models."""
        scale, zero_point = self._input["quantization"]
        return float(scale), int(zero_point)

    @property
    def dynamic_batch(self) -> bool:
        # Only a -1 in the signature makes resizing safe: fixed-batch graphs (e.g. the quantised
        # MobileNets, whose final Reshape pins batch 1) fail to prepare at any other size.
        signature = self._input.get("shape_signature")
        return signature is not None and len(signature) > 0 and int(signature[0]) == -1

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(d) for d in detail["shape"]) for detail in self.outputs]

    def output_quantization(self, index: int) -> tuple[float, int]:
        scale, zero_point = self.outputs[index]["quantization"]
        return float(scale), int(zero_point)

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; returns copies of the outputs in the model's order.

        A model with a dynamic batch takes any batch size; the interpreter is resized when it changes.
        """
        if tensor.shape[0] != self._batch and self.dynamic_batch:
            self._interpreter.resize_tensor_input(self._input_index, list(tensor.shape))
            self._interpreter.allocate_tensors()
            self._batch = int(tensor.shape[0])
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        # get_tensor copies, so results stay valid after the next invoke.
        return [self._interpreter.get_tensor(index) for index in self._output_indices]


def _tensorflow(path: Path, num_threads: int) -> Model:
    from streamproc.inference.tf_runtime import load_tf_model  # imports TensorFlow: only now

    return load_tf_model(path, num_threads)


def _keras_or_saved_model(path: Path) -> bool:
    return path.suffix in KERAS_SUFFIXES or (path.is_dir() and (path / "saved_model.pb").is_file())


register_runtime(Runtime("litert", lambda path: path.suffix == ".tflite", TfliteModel))
register_runtime(Runtime("tensorflow", _keras_or_saved_model, _tensorflow))
