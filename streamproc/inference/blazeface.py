"""BlazeFace face detection: a port of MediaPipe's face detection graph.

The graph, step by step:

1. ImageToTensor (FIT): scale the picture to fit the square model input keeping its aspect ratio,
   pad both sides equally with black, normalise to [-1, 1].
2. The model returns, per SSD anchor, 16 regressors (box centre x, y, width, height, then six
   keypoints x, y) and one raw score.
3. TensorsToDetections: decode the regressors against the anchors, sigmoid the clipped score,
   keep those >= min_score.
4. NonMaxSuppression (WEIGHTED, IoU): clusters of overlapping boxes become one detection whose
   box and keypoints are the score-weighted mean of the cluster, with the top score.
5. DetectionLetterboxRemoval: undo the padding, then scale to full-frame pixels.

Keypoint order: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
(the subject's right and left, so the "right eye" appears on the left of the picture).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamproc.errors import ModelError
from streamproc.frames import Detections
from streamproc.inference.detector import ModelInput, check_input, detect_image
from streamproc.inference.models import BLAZEFACE_FILES, blazeface_model_path
from streamproc.inference.runtime import TfliteModel
from streamproc.pictures import Picture

log = logging.getLogger(__name__)

NUM_KEYPOINTS = 6
KEYPOINT_NAMES = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth",
    "right_ear_tragion",
    "left_ear_tragion",
)
_NUM_COORDS = 4 + 2 * NUM_KEYPOINTS
_SCORE_CLIP = 100.0


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The subset of MediaPipe's SsdAnchorsCalculatorOptions that BlazeFace uses."""

    input_size: int
    num_layers: int
    strides: tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


ANCHOR_OPTIONS: dict[str, SsdAnchorOptions] = {
    "short": SsdAnchorOptions(input_size=128, num_layers=4, strides=(8, 16, 16, 16)),
    "full": SsdAnchorOptions(input_size=192, num_layers=1, strides=(4,), interpolated_scale_aspect_ratio=0.0),
}


def _anchor_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(options: SsdAnchorOptions) -> np.ndarray:
    """Anchors as an (n, 4) float32 array of [x_center, y_center, width, height], normalised.

    Same order as MediaPipe: per group of consecutive layers with equal stride, row by row,
    cell by cell, then the anchors of one cell.
    """
    strides = options.strides[: options.num_layers]
    blocks: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        # Layers that share a stride share one feature map; their anchors go to the same cells.
        widths: list[float] = []
        heights: list[float] = []
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _anchor_scale(options.min_scale, options.max_scale, last, len(strides))
            for ratio in options.aspect_ratios:
                widths.append(scale * math.sqrt(ratio))
                heights.append(scale / math.sqrt(ratio))
            if options.interpolated_scale_aspect_ratio > 0:
                next_scale = (
                    1.0
                    if last == len(strides) - 1
                    else _anchor_scale(options.min_scale, options.max_scale, last + 1, len(strides))
                )
                ratio = options.interpolated_scale_aspect_ratio
                interpolated = math.sqrt(scale * next_scale)
                widths.append(interpolated * math.sqrt(ratio))
                heights.append(interpolated / math.sqrt(ratio))
            last += 1
        size = math.ceil(options.input_size / strides[layer])
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + options.anchor_offset) / size
        per_cell = len(widths)
        block = np.empty((size * size * per_cell, 4), np.float64)
        block[:, :2] = np.repeat(centres, per_cell, axis=0)
        if options.fixed_anchor_size:
            block[:, 2:] = 1.0
        else:
            block[:, 2] = np.tile(widths, size * size)
            block[:, 3] = np.tile(heights, size * size)
        blocks.append(block)
        layer = last
    return np.concatenate(blocks).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How a picture of size (width, height) maps into the square model input."""

    width: int  # original picture size
    height: int
    scaled_width: int  # size of the picture inside the tensor
    scaled_height: int
    offset_x: int  # where it sits in the tensor
    offset_y: int

    @classmethod
    def fit(cls, width: int, height: int, input_size: int) -> Letterbox:
        """Scale to fit inside ``input_size`` squared, centred (odd padding: one more after)."""
        if width <= 0 or height <= 0 or input_size <= 0:
            raise ValueError(f"cannot letterbox a {width}x{height} picture into {input_size}")
        scale = min(input_size / width, input_size / height)
        scaled_width = min(input_size, max(1, int(width * scale + 0.5)))
        scaled_height = min(input_size, max(1, int(height * scale + 0.5)))
        return cls(
            width=width,
            height=height,
            scaled_width=scaled_width,
            scaled_height=scaled_height,
            offset_x=(input_size - scaled_width) // 2,
            offset_y=(input_size - scaled_height) // 2,
        )


class BlazeFaceDetector:
    """MediaPipe BlazeFace, short-range (128x128, faces within ~2 m) or full-range (192x192).

    Not thread-safe (one interpreter and one input buffer): give each worker its own detector.
    """

    def __init__(
        self,
        variant: str = "short",
        min_score: float = 0.5,
        nms_iou: float = 0.3,
        num_threads: int = 1,
        model_path: Path | None = None,
    ) -> None:
        if variant not in ANCHOR_OPTIONS:
            choices = ", ".join(repr(name) for name in BLAZEFACE_FILES)
            raise ModelError(f"unknown BlazeFace variant {variant!r}: choose one of {choices}")
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {min_score}")
        self.variant = variant
        self.name = f"blazeface-{variant}"
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        options = ANCHOR_OPTIONS[variant]
        self.input_size: int = options.input_size
        self.anchors = ssd_anchors(options)
        path = Path(model_path) if model_path is not None else blazeface_model_path(variant)
        self.model = TfliteModel(path, num_threads=num_threads)
        self._check_model(path)
        # sigmoid(x) >= t  <=>  x >= logit(t): threshold the raw scores, no sigmoid over all anchors.
        self._raw_threshold = np.float32(math.log(self.min_score / (1.0 - self.min_score)))
        self._decode_scale, self._decode_offset = _decode_tables(self.anchors, self.input_size)
        self._buffer = np.empty((1, self.input_size, self.input_size, 3), np.float32)
        self._buffer_box: tuple[int, int, int, int] | None = None
        self._letterbox = functools.lru_cache(maxsize=64)(self.letterbox)  # by size: cameras may change
        log.debug("BlazeFace %s: %s, %d anchors", variant, path, len(self.anchors))

    def _check_model(self, path: Path) -> None:
        size, count = self.input_size, len(self.anchors)
        expected_input = (1, size, size, 3)
        if self.model.input_shape != expected_input or self.model.input_dtype != np.float32:
            raise ModelError(
                f"{path} takes {self.model.input_shape} {self.model.input_dtype}, not the "
                f"BlazeFace {self.variant} input {expected_input} float32: check the model path"
            )
        shapes = sorted(tuple(int(d) for d in out["shape"]) for out in self.model.outputs)
        if shapes != [(1, count, 1), (1, count, _NUM_COORDS)]:
            raise ModelError(
                f"{path} outputs {shapes}, not BlazeFace {self.variant} scores (1, {count}, 1) and "
                f"boxes (1, {count}, {_NUM_COORDS}): check the model path"
            )
        # The two models name their outputs differently; tell them apart by the last dimension.
        last_dims = [int(out["shape"][-1]) for out in self.model.outputs]
        self._regressors_at = last_dims.index(_NUM_COORDS)
        self._scores_at = last_dims.index(1)

    def letterbox(self, width: int, height: int) -> Letterbox:
        return Letterbox.fit(width, height, self.input_size)

    def tensor_from_scaled(self, scaled_rgb: np.ndarray, box: Letterbox) -> np.ndarray:
        """Place an already scaled RGB uint8 picture into the padded, normalised model input.

        Returns the detector's own buffer: valid until the next call on this detector.
        """
        key = (box.offset_x, box.offset_y, box.scaled_width, box.scaled_height)
        if key != self._buffer_box:
            # Black padding (-1 after normalisation), rewritten only when the layout changes.
            self._buffer.fill(-1.0)
            self._buffer_box = key
        return self._place(scaled_rgb, box, self._buffer)

    def input_tensor(self, scaled_rgb: np.ndarray, box: Letterbox) -> np.ndarray:
        """Like :meth:`tensor_from_scaled`, into a new array: safe to call from any thread, so the
        capture thread can prepare the model input while this detector runs the previous frame."""
        tensor = np.full((1, self.input_size, self.input_size, 3), -1.0, np.float32)
        return self._place(scaled_rgb, box, tensor)

    def _place(self, scaled_rgb: np.ndarray, box: Letterbox, tensor: np.ndarray) -> np.ndarray:
        if scaled_rgb.shape != (box.scaled_height, box.scaled_width, 3) or scaled_rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a ({box.scaled_height}, {box.scaled_width}, 3) uint8 picture, "
                f"got {scaled_rgb.shape} {scaled_rgb.dtype}"
            )
        if (
            box.offset_x + box.scaled_width > self.input_size
            or box.offset_y + box.scaled_height > self.input_size
        ):
            raise ValueError(f"{box} does not fit the {self.input_size}x{self.input_size} input")
        view = tensor[
            0,
            box.offset_y : box.offset_y + box.scaled_height,
            box.offset_x : box.offset_x + box.scaled_width,
        ]
        np.multiply(scaled_rgb, np.float32(2.0 / 255.0), out=view, dtype=np.float32)
        view -= np.float32(1.0)
        return tensor

    def detect_scaled(self, scaled_rgb: np.ndarray, box: Letterbox) -> Detections:
        """Detect faces in a picture already scaled to ``box``; results in full-frame pixels."""
        return self.detect_tensor(self.tensor_from_scaled(scaled_rgb, box), box)

    def detect_tensor(self, tensor: np.ndarray, box: Letterbox) -> Detections:
        """Detect faces in a model input made by :meth:`input_tensor` for ``box``."""
        outputs = self.model.invoke(tensor)
        return self._decode(outputs[self._regressors_at][0], outputs[self._scores_at][0, :, 0], box)

    def prepare(self, picture: Picture) -> ModelInput:
        """The model input for a picture: thread-safe, so capture threads can make it."""
        box = self._letterbox(picture.width, picture.height)
        tensor = self.input_tensor(picture.rgb(box.scaled_width, box.scaled_height), box)
        tensor.flags.writeable = False
        return ModelInput(self.name, tensor, picture.width, picture.height)

    def detect(self, model_input: ModelInput) -> Detections:
        """Faces in the picture a model input was prepared from, in its pixels."""
        check_input(self, model_input)
        return self.detect_tensor(model_input.tensor, self._letterbox(model_input.width, model_input.height))

    def detect_image(self, rgb: np.ndarray) -> Detections:
        """Detect faces in an RGB uint8 picture of any size (the same path as video frames)."""
        return detect_image(self, rgb)

    def _decode(self, regressors: np.ndarray, raw_scores: np.ndarray, box: Letterbox) -> Detections:
        # Clipping to +-100 cannot change which raw scores pass a threshold inside (0, 1).
        keep = np.flatnonzero(raw_scores >= self._raw_threshold)
        if keep.size == 0:
            return Detections.empty(NUM_KEYPOINTS)
        raw = np.clip(raw_scores[keep], -_SCORE_CLIP, _SCORE_CLIP)
        scores = (1.0 / (1.0 + np.exp(-raw))).astype(np.float32)
        # (k, 16): box centre, box size, six keypoints; in units of the input tensor (0..1).
        points = regressors[keep] * self._decode_scale[keep] + self._decode_offset[keep]
        half = points[:, 2:4] / 2
        # (k, 16) packed: box corners, then keypoints; NMS and unletterboxing work on both at once
        packed = np.concatenate([points[:, :2] - half, points[:, :2] + half, points[:, 4:]], axis=1)
        valid = (half > 0).all(axis=1)  # MediaPipe drops boxes with non-positive size
        if not valid.all():
            packed, scores = packed[valid], scores[valid]
            if scores.size == 0:
                return Detections.empty(NUM_KEYPOINTS)
        packed, scores = _weighted_nms_packed(packed, scores, self.nms_iou)
        scale, shift = _unletterbox(box, self.input_size)
        pixels = packed * scale - shift
        return Detections(
            boxes=pixels[:, :4], scores=scores, keypoints=pixels[:, 4:].reshape(-1, NUM_KEYPOINTS, 2)
        )


def _decode_tables(anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per anchor, the (16,) factor and offset that turn its regressors into tensor units (0..1):
    every value is scaled by the anchor size; centre and keypoints are moved to the anchor."""
    count = len(anchors)
    sizes = np.tile(anchors[:, 2:4], (1, 2 + NUM_KEYPOINTS))  # x, y pairs: anchor width, height
    scale = (sizes / np.float32(input_size)).astype(np.float32)
    offset = np.tile(anchors[:, 0:2], (1, 2 + NUM_KEYPOINTS)).astype(np.float32)
    offset[:, 2:4] = 0.0  # the box size is not a position
    return scale.reshape(count, _NUM_COORDS), offset.reshape(count, _NUM_COORDS)


@functools.lru_cache(maxsize=64)
def _unletterbox(box: Letterbox, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(16,) factor and shift from tensor-normalised x, y pairs to full-frame pixels."""
    scale = np.array(
        [input_size * box.width / box.scaled_width, input_size * box.height / box.scaled_height],
        np.float32,
    )
    shift = np.array(
        [box.offset_x * box.width / box.scaled_width, box.offset_y * box.height / box.scaled_height],
        np.float32,
    )
    return np.tile(scale, 2 + NUM_KEYPOINTS), np.tile(shift, 2 + NUM_KEYPOINTS)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression with IoU overlap.

    Take the best remaining box; every remaining box whose IoU with it exceeds the threshold
    (itself included) forms its cluster. The cluster becomes one detection: box and keypoints are
    the score-weighted mean over the cluster, the score is the best box's.
    """
    packed = np.concatenate([boxes, keypoints.reshape(len(boxes), -1)], axis=1)
    packed, out_scores = _weighted_nms_packed(packed, scores, iou_threshold)
    return packed[:, :4], packed[:, 4:].reshape(-1, *keypoints.shape[1:]), out_scores


def _weighted_nms_packed(
    packed: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`weighted_nms` on rows of box corners followed by any further coordinates: the
    weighted mean covers the whole row in one operation."""
    order = np.argsort(-scores, kind="stable")
    packed, scores = packed[order], scores[order]
    x1, y1, x2, y2 = packed[:, 0], packed[:, 1], packed[:, 2], packed[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    # all pairwise IoUs at once: a handful of candidates per face, so the matrix is tiny
    width = np.clip(np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1), 0, None)
    height = np.clip(np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1), 0, None)
    intersection = width * height
    overlaps = intersection / (areas[:, None] + areas - intersection) > iou_threshold
    weighted = packed * scores[:, None]
    out_rows: list[np.ndarray] = []
    out_scores: list[np.float32] = []
    remaining = np.arange(len(scores))
    while remaining.size:  # one pass per output face, not per anchor
        top = remaining[0]
        in_cluster = overlaps[top, remaining]
        in_cluster[0] = True  # the top box always belongs to its own cluster
        cluster = remaining[in_cluster]
        out_rows.append(weighted[cluster].sum(axis=0) / scores[cluster].sum())
        out_scores.append(scores[top])
        remaining = remaining[~in_cluster]
    return np.stack(out_rows).astype(np.float32, copy=False), np.asarray(out_scores, np.float32)
