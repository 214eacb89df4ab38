"""BlazeFace face detection, computed as MediaPipe 0.10.14's face detection graph computes it.

1. ImageToTensor (:mod:`streamproc.inference.image_to_tensor`): the whole picture, as a square
   about its centre, warped into the model input with OpenCV 3.4's arithmetic, values in [-1, 1].
   Video frames are converted to RGB only where the warp reads (:mod:`.frame_input`).
2. The model returns, per SSD anchor, 16 regressors and one raw score.
3. TensorsToDetections, weighted NonMaxSuppression and DetectionProjection
   (:mod:`streamproc.inference.blazeface_decode`).

Keypoint order: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
(the subject's right and left, so the "right eye" appears on the left of the picture).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streamproc.config.settings import Device
from streamproc.core.errors import ModelError
from streamproc.core.frames import Detections, ModelInput
from streamproc.core.pictures import ArrayPicture, AvPicture, Picture
from streamproc.inference import blazeface_decode as decoding
from streamproc.inference.detector import check_input, detect_image
from streamproc.inference.frame_input import plan_rgb
from streamproc.inference.image_to_tensor import tensor_values, warp_plan
from streamproc.inference.models import BLAZEFACE_MODELS, blazeface_model_path
from streamproc.inference.runtime import Model, load_model

log = logging.getLogger(__name__)

NUM_KEYPOINTS = decoding.NUM_KEYPOINTS
KEYPOINT_NAMES = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth",
    "right_ear_tragion",
    "left_ear_tragion",
)


class BlazeFaceDetector:
    """MediaPipe BlazeFace, short-range (128x128, faces within ~2 m) or full-range (192x192, sparse).

    A :class:`~streamproc.inference.detector.Detector`: :meth:`prepare` is thread-safe (capture
    threads make the next inputs while this detector runs the previous one); :meth:`detect` is not
    (one interpreter): give each worker its own detector.
    """

    def __init__(
        self,
        variant: str = "short",
        min_score: float | None = None,
        nms_iou: float = 0.3,
        num_threads: int = 1,
        model_path: Path | None = None,
        model: Model | None = None,
        device: Device = "cpu",
    ) -> None:
        spec = decoding.SPECS.get(variant)
        if spec is None:
            choices = ", ".join(repr(name) for name in BLAZEFACE_MODELS)
            raise ModelError(f"unknown BlazeFace variant {variant!r}: choose one of {choices}")
        score = spec.min_score if min_score is None else float(min_score)
        if not 0.0 < score < 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {score}")
        self.variant = variant
        self.name = f"blazeface-{variant}"
        self.min_score = score
        self.nms_iou = float(nms_iou)
        self.input_size: int = spec.input_size
        self.anchors = decoding.ssd_anchors(spec)
        if model is not None:  # loaded by the caller (a TF.js BlazeFace): no file of ours
            path, self.model = model.path, model
        else:
            path = Path(model_path) if model_path is not None else blazeface_model_path(variant)
            self.model = load_model(path, num_threads, device)
        self._check_model(path)
        log.debug("BlazeFace %s: %s, %d anchors, min score %g", variant, path, len(self.anchors), score)

    def _check_model(self, path: Path) -> None:
        size, count = self.input_size, len(self.anchors)
        expected_input = (1, size, size, 3)
        if self.model.input_shape != expected_input or self.model.input_dtype != np.float32:
            raise ModelError(
                f"{path} takes {self.model.input_shape} {self.model.input_dtype}, not the "
                f"BlazeFace {self.variant} input {expected_input} float32: check the model path"
            )
        shapes = sorted(self.model.output_shapes)
        if shapes != [(1, count, 1), (1, count, decoding.NUM_COORDS)]:
            raise ModelError(
                f"{path} outputs {shapes}, not BlazeFace {self.variant} scores (1, {count}, 1) and "
                f"boxes (1, {count}, {decoding.NUM_COORDS}): check the model path"
            )
        # The two models name their outputs differently; tell them apart by the last dimension.
        last_dims = [shape[-1] for shape in self.model.output_shapes]
        self._regressors_at = last_dims.index(decoding.NUM_COORDS)
        self._scores_at = last_dims.index(1)

    def prepare(self, picture: Picture) -> ModelInput:
        """The model input of a decoded picture (a video frame or a BGR array); any thread."""
        plan = warp_plan(picture.width, picture.height, self.input_size)
        if isinstance(picture, AvPicture):  # RGB made only where the warp reads (see frame_input)
            warped = plan.warp_sampled(plan_rgb(picture.av_frame, plan))
        elif isinstance(picture, ArrayPicture) and picture.rgb_order:
            warped = plan.warp(picture.array)
        else:  # the warp treats channels alike: warp the BGR picture, swap channels in the small result
            warped = cv2.cvtColor(plan.warp(picture.bgr()), cv2.COLOR_BGR2RGB)
        tensor = tensor_values(warped)[None]
        tensor.flags.writeable = False
        return ModelInput(self.name, tensor, picture.width, picture.height)

    def detect(self, model_input: ModelInput) -> Detections:
        """Faces in the picture a model input was prepared from, in its pixels, best first."""
        return self.detect_many([model_input])[0]

    def detect_many(self, model_inputs: Sequence[ModelInput]) -> list[Detections]:
        """:meth:`detect` for each input, the model run on all of them first: Python work straight
        after an invoke meets caches the model has just filled and took twice the CPU (decoding and
        tracking a 720p frame: 0.65-0.76 ms after each invoke, 0.35-0.40 ms in runs of 10)."""
        for model_input in model_inputs:
            check_input(self, model_input)
        outputs = [self.model.invoke(model_input.tensor) for model_input in model_inputs]
        found = decoding.decode(
            [output[self._regressors_at][0] for output in outputs],
            [output[self._scores_at][0, :, 0] for output in outputs],
            self.anchors,
            self.input_size,
            self.min_score,
        )
        return [self._faces(faces, made) for faces, made in zip(found, model_inputs, strict=True)]

    def _faces(self, faces: decoding.RawFaces, model_input: ModelInput) -> Detections:
        """Decoded detections of one input, merged and mapped back into the input's picture."""
        faces = decoding.weighted_nms(faces, self.nms_iou)
        if len(faces) == 0:
            return Detections.empty(NUM_KEYPOINTS)
        roi = warp_plan(model_input.width, model_input.height, self.input_size).roi
        boxes, keypoints = decoding.project(faces, roi, model_input.width, model_input.height)
        return Detections(
            boxes=boxes.astype(np.float32), scores=faces.scores, keypoints=keypoints.astype(np.float32)
        )

    def detect_image(self, rgb: np.ndarray) -> Detections:
        """Faces in an RGB uint8 picture of any size (the same path as video frames), best first."""
        return detect_image(self, rgb)
