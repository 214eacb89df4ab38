"""A TF.js model rebuilt in TensorFlow: what the converter and the TensorFlow runtime both take."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TfjsFunction:
    """``run(x)`` maps an input tensor to the outputs, in ``output_names`` order.

    ``owner`` keeps the objects ``run`` closes over (the imported graph, the Keras model) alive.
    """

    run: Callable[[Any], list[Any]]
    input_shape: tuple[int | None, ...]
    dtype: Any
    output_names: list[str]
    owner: Any
