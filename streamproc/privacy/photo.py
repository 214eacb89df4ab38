"""One uploaded image redacted (POST /api/v1/redact): decoded upright, every head covered, encoded
again in its own format without any of its metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamproc.core.pictures import ArrayPicture
from streamproc.inference.detector import Detector
from streamproc.media.crops import encode_image
from streamproc.media.still_images import decode_image
from streamproc.privacy.cover import Mode, cover_bgr
from streamproc.privacy.regions import head_regions


@dataclass(frozen=True)
class RedactRequest:
    """How to redact one image: ``mode``, the least face score, the head margin, JPEG/WebP quality."""

    mode: Mode
    min_score: float
    margin: float
    quality: int = 95


def redact_image(data: bytes, detector: Detector, request: RedactRequest, max_pixels: int) -> dict[str, Any]:
    """The redacted image (``image``: its bytes) with its ``format``, size and number of ``faces``
    covered; ImageError when the data is not an image we read, damaged or too big."""
    bgr, header = decode_image(data, max_pixels)
    height, width = bgr.shape[:2]
    detections = detector.detect(detector.prepare(ArrayPicture(bgr)))
    faces = detections.boxes[detections.scores >= request.min_score]
    regions = head_regions(faces, request.margin, width, height)
    cover_bgr(bgr, regions, request.mode)
    image = encode_image(bgr, header.format, request.quality)
    return {"image": image, "format": header.format, "width": width, "height": height, "faces": len(regions)}
