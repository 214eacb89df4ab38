"""BlazeFace's post-processing as MediaPipe 0.10.14 computes it (float32, step for step).

- SsdAnchorsCalculator: the anchors (fixed size 1, centres at cell + 0.5).
- TensorsToDetectionsCalculator: regressors are x, y, w, h then six keypoints x, y, in tensor
  pixels relative to the anchor; scores are clipped to +-100, passed through a sigmoid and kept
  when >= the model's threshold; boxes with negative width or height are dropped.
- NonMaxSuppressionCalculator (WEIGHTED, IoU > 0.3): the best remaining detection and every
  remaining one overlapping it form a cluster; the cluster's corners and keypoints are the
  score-weighted mean, its score the best one's.
- DetectionProjectionCalculator: tensor-normalised coordinates go back to the picture through the
  ROI (x = x_t * side + left), the box being spanned by its projected corners.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamproc.core.geometry import box_iou
from streamproc.inference.image_to_tensor import SquareRoi

NUM_KEYPOINTS = 6
NUM_COORDS = 4 + 2 * NUM_KEYPOINTS
SCORE_CLIP = np.float32(100.0)


@dataclass(frozen=True)
class BlazeFaceSpec:
    """What MediaPipe's graph for one BlazeFace model declares."""

    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score: float  # TensorsToDetections' min_score_thresh
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset: float = 0.5


SPECS: dict[str, BlazeFaceSpec] = {
    "short": BlazeFaceSpec(
        input_size=128, strides=(8, 16, 16, 16), interpolated_scale_aspect_ratio=1.0, min_score=0.5
    ),
    "full": BlazeFaceSpec(input_size=192, strides=(4,), interpolated_scale_aspect_ratio=0.0, min_score=0.6),
    # MediaPipe's back-camera model (256x256), as TF.js zoos ship it: no file here, passed in as ``model``
    "back": BlazeFaceSpec(
        input_size=256,
        strides=(16, 32, 32, 32),
        interpolated_scale_aspect_ratio=1.0,
        min_score=0.5,
        min_scale=0.15625,
    ),
}


def ssd_anchors(spec: BlazeFaceSpec) -> np.ndarray:
    """Anchor centres as an (n, 2) float32 array [x, y], normalised (all anchors have size 1).

    Same order as MediaPipe: per run of layers with equal stride, row by row, cell by cell, then
    the anchors of one cell (one per aspect ratio, plus the interpolated one where enabled).
    """
    blocks: list[np.ndarray] = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        per_cell = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            per_cell += 1 + (spec.interpolated_scale_aspect_ratio > 0)  # scales only size anchors
            layer += 1
        cells = math.ceil(spec.input_size / stride)
        index = np.arange(cells, dtype=np.float32)
        centres = (index + np.float32(spec.anchor_offset)) * (np.float32(1.0) / np.float32(cells))
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        blocks.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(blocks).astype(np.float32)


@dataclass(frozen=True)
class RawFaces:
    """Detections in tensor-normalised coordinates (0..1 across the tensor), float32."""

    boxes: np.ndarray  # (n, 4) xmin, ymin, xmax, ymax
    keypoints: np.ndarray  # (n, 6, 2)
    scores: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.scores)


def decode(
    regressors: Sequence[np.ndarray],
    raw_scores: Sequence[np.ndarray],
    anchors: np.ndarray,
    input_size: int,
    min_score: float,
) -> list[RawFaces]:
    """TensorsToDetections for a run of model outputs: per output, (n, 16) regressors and (n,) raw
    scores -> detections above ``min_score``. The run goes through each numpy operation once (its
    cost per call, not the arithmetic, dominates 896 anchors); values are computed one by one, alike."""
    raw = np.stack(raw_scores).astype(np.float32, copy=False)
    clipped = np.clip(raw, -SCORE_CLIP, SCORE_CLIP)
    with np.errstate(over="ignore"):  # exp(100) is inf in float32, as in MediaPipe: the score is 0
        scores = np.float32(1.0) / (np.float32(1.0) + np.exp(-clipped))
    rows, keep = np.nonzero(scores >= np.float32(min_score))  # output by output, anchors in order
    values = np.stack(regressors)[rows, keep].astype(np.float32, copy=False).reshape(-1, 2 + NUM_KEYPOINTS, 2)
    centres = anchors[keep][:, None, :]
    scaled = values / np.float32(input_size)  # anchor size is 1: no further factor
    centre = scaled[:, 0] + centres[:, 0]
    half = scaled[:, 1] / np.float32(2.0)
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = scaled[:, 2:] + centres
    size = boxes[:, 2:] - boxes[:, :2]
    valid = (size >= 0).all(axis=1)  # negative (or NaN) width or height: dropped
    boxes, keypoints, kept = boxes[valid], keypoints[valid], scores[rows, keep][valid]
    ends = np.cumsum(np.bincount(rows[valid], minlength=len(raw))).tolist()
    return [
        RawFaces(boxes[start:end], keypoints[start:end], kept[start:end])
        for start, end in zip([0, *ends[:-1]], ends, strict=True)
    ]


def weighted_nms(faces: RawFaces, iou_threshold: float) -> RawFaces:
    """MediaPipe's WEIGHTED non-maximum suppression with IoU overlap, literally: clusters in score
    order; a detection joins the best remaining one's cluster when their IoU exceeds the threshold."""
    if not len(faces):
        return faces
    order = np.argsort(-faces.scores, kind="stable")
    scores = faces.scores[order]
    # corners and keypoints side by side: a cluster's weighted mean is one sum (the same float32
    # additions, row by row, as summing each apart)
    coords = np.concatenate([faces.boxes, faces.keypoints.reshape(len(scores), -1)], axis=1)[order]
    overlaps = box_iou(coords[:, :4], coords[:, :4]) > np.float32(iou_threshold)
    merged, out_scores = [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        joins = overlaps[top, remaining]
        cluster = remaining[joins]
        out_scores.append(scores[top])
        if not cluster.size:  # an empty box overlaps nothing, itself included: kept as it is;
            merged.append(coords[top])  # as MediaPipe, nothing was taken: stop
            break
        weights = scores[cluster]
        total = weights.sum(dtype=np.float32)
        merged.append((coords[cluster] * weights[:, None]).sum(axis=0, dtype=np.float32) / total)
        remaining = remaining[~joins]
    found = np.stack(merged)
    keypoints = found[:, 4:].reshape(-1, NUM_KEYPOINTS, 2)
    return RawFaces(found[:, :4], keypoints, np.array(out_scores, np.float32))


def project(faces: RawFaces, roi: SquareRoi, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """DetectionProjection through the ROI's matrix, then to pixels: (n, 4) boxes, (n, 6, 2) keypoints.

    MediaPipe's matrix maps tensor-normalised points to picture-normalised ones in float32:
    x' = x * side / W + (left) / W. Pixels are x' * W.
    """
    f32 = np.float32
    side = f32(roi.side)
    size = np.array([width, height], np.float32)
    inverse_size = f32(1.0) / size
    scale = side * inverse_size
    shift = (f32(-0.5) * side + np.array([roi.center_x, roi.center_y], np.float32)) * inverse_size
    keypoints = (faces.keypoints * scale + shift).astype(np.float64) * size
    corners = faces.boxes.reshape(-1, 2, 2) * scale + shift  # a scale and shift keeps min and max
    boxes = (corners.astype(np.float64) * size).reshape(-1, 4)
    return boxes, keypoints
