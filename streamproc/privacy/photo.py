"""One uploaded image redacted (POST /api/v1/redact): the decoded (upright) picture with every head
covered, encoded again in its own format without any of its metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from streamproc.core.pictures import ArrayPicture
from streamproc.inference.detector import Detector
from streamproc.media.crops import encode_image
from streamproc.privacy.cover import Mode, cover_bgr
from streamproc.privacy.regions import head_regions


@dataclass(frozen=True)
class RedactRequest:
    """How to redact one image: ``mode``, the least face score, the head margin, JPEG/WebP quality."""

    mode: Mode
    min_score: float
    margin: float
    quality: int = 95


def redact_image(bgr: np.ndarray, kind: str, detector: Detector, request: RedactRequest) -> dict[str, Any]:
    """Hide every head of a decoded (upright) picture in place; returns the image encoded as
    ``kind`` (jpeg, png, webp, bmp) under ``image``, with its ``format``, size and the number of
    ``faces`` covered."""
    height, width = bgr.shape[:2]
    detections = detector.detect(detector.prepare(ArrayPicture(bgr)))
    faces = detections.boxes[detections.scores >= request.min_score]
    regions = head_regions(faces, request.margin, width, height)
    cover_bgr(bgr, regions, request.mode)
    image = encode_image(bgr, kind, request.quality)
    return {"image": image, "format": kind, "width": width, "height": height, "faces": len(regions)}
