"""The pictures a classifier sees: square face crops (with a margin) and the whole image, as RGB at
the classifier's input size. Shared by the analysis stage, photos and the HTTP detection API."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from streamproc.inference.classifier import resize_area
from streamproc.snapshots import square_crop


def classifier_pictures(
    bgr: np.ndarray,
    boxes: Sequence[np.ndarray],
    margin: float,
    size: tuple[int, int],
    whole_image: bool = False,
) -> list[np.ndarray]:
    """RGB uint8 pictures of ``size`` (width, height): one per face box, then the whole image if asked."""
    width, height = size
    pictures = [square_crop(bgr, box, margin) for box in boxes]
    if whole_image:
        pictures.append(bgr)
    return [cv2.cvtColor(resize_area(picture, width, height), cv2.COLOR_BGR2RGB) for picture in pictures]
