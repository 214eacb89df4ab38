"""A TF.js BlazeFace (MediaPipe's 256x256 back-camera model, as Human ships it) as the face detector.

Human's graph answers in four tensors, scores and boxes for each of two anchor grids; streamproc's
detector decodes MediaPipe's two (all anchors' boxes, all anchors' scores). The grids are joined,
finer first, which is MediaPipe's anchor order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamproc.config.settings import Device
from streamproc.core.errors import ModelError
from streamproc.inference.blazeface import BlazeFaceDetector
from streamproc.inference.runtime import OutputsView
from streamproc.inference.tfjs.loader import TfjsModel, load_tfjs_model

_BOX_VALUES = 16  # box centre and size, six keypoints


class JoinedOutputs(OutputsView):
    """A loaded TF.js BlazeFace whose outputs come as MediaPipe's: (1, n, 16) boxes, (1, n, 1) scores.
    A :class:`~streamproc.inference.runtime.Model` like any other."""

    def __init__(self, loaded: TfjsModel) -> None:
        super().__init__(loaded.model)
        self.path = loaded.source.path
        shapes = self._model.output_shapes
        by_size = sorted(range(len(shapes)), key=lambda i: -shapes[i][1])  # finer grid first
        self._boxes = [i for i in by_size if shapes[i][-1] == _BOX_VALUES]
        self._scores = [i for i in by_size if shapes[i][-1] == 1]
        counts = [shapes[i][1] for i in self._boxes]
        if not counts or counts != [shapes[i][1] for i in self._scores] or len(by_size) != 2 * len(counts):
            raise ModelError(f"{self.path} outputs {shapes}: not BlazeFace scores and boxes per anchor grid")
        total = sum(counts)
        self.output_shapes: list[tuple[int, ...]] = [(1, total, _BOX_VALUES), (1, total, 1)]

    def output_quantization(self, index: int) -> tuple[float, int]:
        return 0.0, 0  # joined float outputs

    def invoke(self, tensor: np.ndarray) -> list[np.ndarray]:
        outputs = self._model.invoke(tensor)
        return [
            np.concatenate([outputs[i] for i in self._boxes], axis=1),
            np.concatenate([outputs[i] for i in self._scores], axis=1),
        ]


def tfjs_blazeface(
    path: Path,
    min_score: float | None = None,
    nms_iou: float = 0.3,
    num_threads: int = 1,
    device: Device = "cpu",
) -> BlazeFaceDetector:
    """The detector for a TF.js BlazeFace ``model.json`` (256x256 input, 896 anchors)."""
    joined = JoinedOutputs(load_tfjs_model(path, num_threads, device=device))
    return BlazeFaceDetector("back", min_score, nms_iou, num_threads, model=joined)
