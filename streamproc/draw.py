"""Annotation: face boxes, keypoints and scores drawn onto a BGR picture."""

from __future__ import annotations

import cv2
import numpy as np

from streamproc.frames import Detections

BOX_COLOUR = (0, 220, 0)  # BGR
KEYPOINT_COLOUR = (0, 140, 255)
TEXT_COLOUR = (255, 255, 255)


def draw_detections(
    image: np.ndarray, detections: Detections, keypoints: bool = True, scores: bool = True
) -> np.ndarray:
    """Draw in place on ``image`` (BGR uint8) and return it."""
    thickness = max(1, round(min(image.shape[:2]) / 300))
    font_scale = max(0.4, min(image.shape[:2]) / 900)
    for index in range(len(detections)):
        x1, y1, x2, y2 = (round(v) for v in detections.boxes[index])
        cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, thickness, cv2.LINE_AA)
        if keypoints:
            for x, y in detections.keypoints[index]:
                cv2.circle(image, (round(x), round(y)), thickness + 1, KEYPOINT_COLOUR, -1)
        if scores:
            label = f"face {detections.scores[index]:.2f}"
            (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
            top = max(0, y1 - text_h - baseline - 2)
            cv2.rectangle(image, (x1, top), (x1 + text_w + 2, top + text_h + baseline + 2), BOX_COLOUR, -1)
            cv2.putText(
                image,
                label,
                (x1 + 1, top + text_h + 1),
                cv2.FONT_HERSHEY_SIMPLEX,
                font_scale,
                TEXT_COLOUR,
                1,
                cv2.LINE_AA,
            )
    return image
