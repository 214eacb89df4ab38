"""A thin wrapper over the LiteRT interpreter that turns loader failures into ModelError."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from streamproc.errors import ModelError

log = logging.getLogger(__name__)


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
            # LiteRT's messages span lines; keep the first so the user-facing error stays one line.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{self.path} is not a TFLite model ({reason}): "
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

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; returns copies of the outputs in the model's order."""
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        # get_tensor copies, so results stay valid after the next invoke.
        return [self._interpreter.get_tensor(index) for index in self._output_indices]
