"""Box geometry shared by detection, tracking and reports: one IoU for the whole project."""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between (n, 4) and (m, 4) boxes [x1, y1, x2, y2]; 0 where the union is empty."""
    a, b = np.asarray(a), np.asarray(b)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)  # np.clip's wrapper costs more than the math
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def inside_fraction(box: np.ndarray, width: int, height: int) -> float:
    """How much of a box lies inside the frame (a face cut by the edge makes a poor snapshot)."""
    area = float((box[2] - box[0]) * (box[3] - box[1]))
    if area <= 0:
        return 0.0
    w = min(float(box[2]), width) - max(float(box[0]), 0.0)
    h = min(float(box[3]), height) - max(float(box[1]), 0.0)
    return max(w, 0.0) * max(h, 0.0) / area
