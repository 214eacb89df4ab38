"""Results we call exact do not move with OpenCV: the area resize computed here, the rest checked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from streamproc.core.errors import StreamprocError
from streamproc.inference import opencv_check
from streamproc.media.area_resize import area_shrink


def _shapes() -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(11)
    cases = [
        (int(h), int(w), int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1)))
        for h, w in rng.integers(2, 400, (40, 2))
    ]
    cases += [(f * 37, f * 23, 23, 37) for f in (2, 3, 4, 5)]  # OpenCV's integer-factor path
    return cases


@pytest.mark.parametrize(("height", "width", "to_width", "to_height"), _shapes())
def test_area_shrink_is_opencv_50s_inter_area_bit_for_bit(
    height: int, width: int, to_width: int, to_height: int
) -> None:
    picture = np.random.default_rng(height * 1000 + width).integers(0, 256, (height, width, 3), np.uint8)
    expected = cv2.resize(picture, (to_width, to_height), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(area_shrink(picture, to_width, to_height), expected)


@pytest.mark.parametrize("name", ["kite_and_cold.jpg", "face.jpg", "cat.bmp", "parrot.jpg"])
@pytest.mark.parametrize("size", [224, 128])
def test_area_shrink_matches_opencv_on_the_reference_photos(shared_dir, name: str, size: int) -> None:
    with Image.open(shared_dir / "images" / name) as image:
        rgb = np.asarray(image.convert("RGB"))
    expected = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(area_shrink(rgb, size, size), expected)


def test_area_shrink_refuses_to_enlarge() -> None:
    with pytest.raises(ValueError, match="only shrinks"):
        area_shrink(np.zeros((10, 10, 3), np.uint8), 20, 5)


def test_installed_opencv_computes_what_was_checked() -> None:
    opencv_check.check(opencv_check.PROBES)  # raises on any difference


def test_a_different_arithmetic_stops_with_one_line_naming_opencv() -> None:
    """The remap probe run with nearest-neighbour weights stands in for an OpenCV that blends
    differently: the check must name the operation and the installed version on one line."""
    name, (_, digest) = next(iter(opencv_check.PROBES.items()))

    def nearest() -> bytes:
        picture = np.arange(13 * 11 * 3, dtype=np.uint8).reshape(13, 11, 3)
        maps = np.zeros((32, 32, 2), np.float32)
        return cv2.remap(picture, maps, None, cv2.INTER_NEAREST).tobytes()

    with pytest.raises(StreamprocError) as caught:
        opencv_check.check({name: (nearest, digest)})
    message = str(caught.value)
    assert "\n" not in message
    assert f"OpenCV {cv2.__version__}" in message and name in message
