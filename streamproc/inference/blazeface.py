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
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamproc.errors import ModelError
from streamproc.frames import Detections, Picture
from streamproc.inference import blazeface_decode as decoding
from streamproc.inference.frame_input import plan_rgb
from streamproc.inference.image_to_tensor import WarpPlan, tensor_values, warp_plan
from streamproc.inference.models import BLAZEFACE_MODELS, blazeface_model_path
from streamproc.inference.runtime import TfliteModel

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


@dataclass(frozen=True, eq=False)
class BlazeFaceInput:
    """One picture's model input, and the plan that maps faces back onto the picture."""

    tensor: np.ndarray  # (1, S, S, 3) float32
    plan: WarpPlan


class BlazeFaceDetector:
    """MediaPipe BlazeFace, short-range (128x128, faces within ~2 m) or full-range (192x192, sparse).

    :meth:`prepare` is thread-safe (the capture thread may make the next input while this detector
    runs the previous one); :meth:`detect_input` is not (one interpreter): give each worker its own
    detector.
    """

    def __init__(
        self,
        variant: str = "short",
        min_score: float | None = None,
        nms_iou: float = 0.3,
        num_threads: int = 1,
        model_path: Path | None = None,
    ) -> None:
        spec = decoding.SPECS.get(variant)
        if spec is None:
            choices = ", ".join(repr(name) for name in BLAZEFACE_MODELS)
            raise ModelError(f"unknown BlazeFace variant {variant!r}: choose one of {choices}")
        score = spec.min_score if min_score is None else float(min_score)
        if not 0.0 < score < 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {score}")
        self.variant = variant
        self.min_score = score
        self.nms_iou = float(nms_iou)
        self.input_size: int = spec.input_size
        self.anchors = decoding.ssd_anchors(spec)
        path = Path(model_path) if model_path is not None else blazeface_model_path(variant)
        self.model = TfliteModel(path, num_threads=num_threads)
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
        shapes = sorted(tuple(int(d) for d in out["shape"]) for out in self.model.outputs)
        if shapes != [(1, count, 1), (1, count, decoding.NUM_COORDS)]:
            raise ModelError(
                f"{path} outputs {shapes}, not BlazeFace {self.variant} scores (1, {count}, 1) and "
                f"boxes (1, {count}, {decoding.NUM_COORDS}): check the model path"
            )
        # The two models name their outputs differently; tell them apart by the last dimension.
        last_dims = [int(out["shape"][-1]) for out in self.model.outputs]
        self._regressors_at = last_dims.index(decoding.NUM_COORDS)
        self._scores_at = last_dims.index(1)

    def prepare(self, picture: Picture) -> BlazeFaceInput:
        """The model input of a decoded picture (a video frame or a BGR array); any thread."""
        plan = warp_plan(picture.width, picture.height, self.input_size)
        av_frame = getattr(picture, "av_frame", None)
        if av_frame is not None:
            warped = plan.warp_sampled(plan_rgb(av_frame, plan))
        else:  # the warp treats channels alike: warp the BGR picture, swap channels in the small result
            warped = cv2.cvtColor(plan.warp(picture.bgr()), cv2.COLOR_BGR2RGB)
        return BlazeFaceInput(tensor_values(warped)[None], plan)

    def prepare_rgb(self, rgb: np.ndarray) -> BlazeFaceInput:
        """The model input of an RGB uint8 picture of any size; any thread."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (h, w, 3) uint8 RGB picture, got {rgb.shape} {rgb.dtype}")
        plan = warp_plan(rgb.shape[1], rgb.shape[0], self.input_size)
        return BlazeFaceInput(tensor_values(plan.warp(rgb))[None], plan)

    def detect(self, rgb: np.ndarray) -> Detections:
        """Faces in an RGB uint8 picture of any size, in its pixels, best first."""
        return self.detect_input(self.prepare_rgb(rgb))

    def detect_input(self, model_input: BlazeFaceInput) -> Detections:
        """Faces in a prepared input, in the pixels of the picture it was made from, best first."""
        outputs = self.model.invoke(model_input.tensor)
        faces = decoding.decode(
            outputs[self._regressors_at][0],
            outputs[self._scores_at][0, :, 0],
            self.anchors,
            self.input_size,
            self.min_score,
        )
        faces = decoding.weighted_nms(faces, self.nms_iou)
        if len(faces) == 0:
            return Detections.empty(NUM_KEYPOINTS)
        plan = model_input.plan
        boxes, keypoints = decoding.project(faces, plan.roi, plan.width, plan.height)
        return Detections(
            boxes=boxes.astype(np.float32), scores=faces.scores, keypoints=keypoints.astype(np.float32)
        )
