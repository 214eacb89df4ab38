"""BlazeFace against reference detections on real photos (../shared), plus the pieces around it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from streamproc.errors import ModelError
from streamproc.geometry import box_iou
from streamproc.inference.blazeface import (
    ANCHOR_OPTIONS,
    BlazeFaceDetector,
    Letterbox,
    ssd_anchors,
    weighted_nms,
)
from streamproc.inference.models import blazeface_model_path
from streamproc.inference.runtime import TfliteModel

VARIANTS = ("short", "full")


def _reference_images() -> list[str]:
    """Images the reference covers, read at collection time to parametrize the tests."""
    override = os.environ.get("STREAMPROC_SHARED_DIR")
    shared = Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared"
    path = shared / "reference" / "blazeface_reference.json"
    if not path.is_file():
        return ["<missing blazeface_reference.json>"]  # one case that fails loudly instead of an empty set
    return sorted(name for name in json.loads(path.read_text()) if not name.startswith("_"))


@pytest.fixture(scope="session")
def reference(shared_dir: Path) -> dict:
    return json.loads((shared_dir / "reference" / "blazeface_reference.json").read_text())


@pytest.fixture(scope="session", params=VARIANTS)
def detector(request: pytest.FixtureRequest) -> BlazeFaceDetector:
    return BlazeFaceDetector(request.param)


def _load_rgb(shared_dir: Path, name: str) -> np.ndarray:
    path = shared_dir / "images" / name
    assert path.is_file(), f"{path} missing"
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _reference_faces(reference: dict, name: str, variant: str, width: int, height: int) -> list[dict]:
    entry = reference[name]
    assert entry["size"] == [width, height], f"{name}: reference size {entry['size']}"
    return entry[variant]


def _greedy_match(iou: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (reference, detection), best IoU first, each used once."""
    iou = iou.copy()
    pairs = []
    for _ in range(min(iou.shape)):
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        if iou[i, j] <= 0:
            break
        pairs.append((int(i), int(j)))
        iou[i, :] = -1
        iou[:, j] = -1
    return pairs


def _compare(detections, faces: list[dict], width: int, height: int, *, min_iou: float, full: bool) -> None:
    assert len(detections) == len(faces), f"{len(detections)} faces found, reference has {len(faces)}"
    if not faces:
        return
    size = np.array([width, height], np.float64)
    ref_boxes = np.array(
        [[x, y, x + w, y + h] for x, y, w, h in (f["bbox_xywh_norm"] for f in faces)]
    ) * np.tile(size, 2)
    iou = box_iou(ref_boxes, detections.boxes.astype(np.float64))
    pairs = _greedy_match(iou)
    assert len(pairs) == len(faces), f"only {len(pairs)} of {len(faces)} reference faces overlap a detection"
    for i, j in pairs:
        assert iou[i, j] >= min_iou, f"reference face {i}: IoU {iou[i, j]:.3f} < {min_iou}"
        if not full:
            continue
        ref_points = np.array(faces[i]["keypoints_norm"])
        distance = np.linalg.norm(detections.keypoints[j] / size - ref_points, axis=1)
        assert distance.max() <= 0.02, f"reference face {i}: keypoint off by {distance.max():.4f}"
        score_diff = abs(float(detections.scores[j]) - faces[i]["score"])
        assert score_diff <= 0.05, f"reference face {i}: score off by {score_diff:.4f}"


@pytest.mark.parametrize("name", _reference_images())
def test_detect_scaled_matches_reference(
    detector: BlazeFaceDetector, shared_dir: Path, reference: dict, name: str
) -> None:
    rgb = _load_rgb(shared_dir, name)
    height, width = rgb.shape[:2]
    faces = _reference_faces(reference, name, detector.variant, width, height)
    box = detector.letterbox(width, height)
    # The reference resized with PIL's bilinear filter; do the same so only the decoder differs.
    scaled = np.asarray(Image.fromarray(rgb).resize((box.scaled_width, box.scaled_height), Image.BILINEAR))
    detections = detector.detect_scaled(scaled, box)
    _compare(detections, faces, width, height, min_iou=0.9, full=True)


@pytest.mark.parametrize("name", _reference_images())
def test_detect_matches_reference(
    detector: BlazeFaceDetector, shared_dir: Path, reference: dict, name: str
) -> None:
    rgb = _load_rgb(shared_dir, name)
    height, width = rgb.shape[:2]
    faces = _reference_faces(reference, name, detector.variant, width, height)
    detections = detector.detect_image(rgb)
    # OpenCV's resize differs a little from PIL's, so only counts and boxes are held to the reference.
    _compare(detections, faces, width, height, min_iou=0.85, full=False)


def test_detections_have_declared_types(shared_dir: Path) -> None:
    detections = BlazeFaceDetector("short").detect_image(_load_rgb(shared_dir, "face.jpg"))
    assert len(detections) > 0
    assert detections.boxes.dtype == np.float32 and detections.boxes.shape == (len(detections), 4)
    assert detections.scores.dtype == np.float32 and detections.scores.shape == (len(detections),)
    assert detections.keypoints.dtype == np.float32
    assert detections.keypoints.shape == (len(detections), 6, 2)
    assert np.all(np.diff(detections.scores) <= 0), "detections come best first"


def test_detect_enlarges_small_pictures(shared_dir: Path) -> None:
    rgb = _load_rgb(shared_dir, "grace_hopper.bmp")  # 512x600, one face
    small = np.asarray(Image.fromarray(rgb).resize((85, 100), Image.BILINEAR))
    detector = BlazeFaceDetector("short")
    detections = detector.detect_image(small)  # 85x100 enlarged to 109x128
    large = detector.detect_image(rgb)
    assert len(detections) == 1 and len(large) == 1
    assert box_iou(detections.boxes * (512 / 85), large.boxes)[0, 0] >= 0.8


@pytest.mark.parametrize(("variant", "count"), [("short", 896), ("full", 2304)])
def test_anchor_counts(variant: str, count: int) -> None:
    anchors = ssd_anchors(ANCHOR_OPTIONS[variant])
    assert anchors.shape == (count, 4)
    assert np.all((anchors[:, :2] > 0) & (anchors[:, :2] < 1))
    assert np.all(anchors[:, 2:] == 1.0)  # fixed anchor size


def test_short_range_anchor_layout() -> None:
    anchors = ssd_anchors(ANCHOR_OPTIONS["short"])
    # Stride 8: 16x16 cells with 2 anchors each, then stride 16: 8x8 cells with 6 anchors each.
    np.testing.assert_allclose(anchors[0, :2], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1, :2], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2, :2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512:518, :2], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(anchors[518, :2], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1, :2], [7.5 / 8, 7.5 / 8])


def test_letterbox_fit() -> None:
    assert Letterbox.fit(1280, 720, 128) == Letterbox(1280, 720, 128, 72, 0, 28)
    assert Letterbox.fit(720, 1280, 192) == Letterbox(720, 1280, 108, 192, 42, 0)
    assert Letterbox.fit(128, 128, 128) == Letterbox(128, 128, 128, 128, 0, 0)
    with pytest.raises(ValueError):
        Letterbox.fit(0, 720, 128)


def test_tensor_from_scaled_pads_black_and_normalises() -> None:
    detector = BlazeFaceDetector("short")
    wide = detector.letterbox(1280, 720)
    picture = np.full((72, 128, 3), 255, np.uint8)
    picture[0, 0] = (0, 51, 255)
    tensor = detector.tensor_from_scaled(picture, wide)
    assert tensor.shape == (1, 128, 128, 3) and tensor.dtype == np.float32
    assert np.all(tensor[0, :28] == -1.0) and np.all(tensor[0, 100:] == -1.0)
    np.testing.assert_allclose(tensor[0, 28, 0], [-1.0, -0.6, 1.0], atol=1e-6)
    assert np.all(tensor[0, 29:100] == 1.0)
    # A different layout must not leave the previous picture behind in the padding.
    tall = detector.letterbox(720, 1280)
    tensor = detector.tensor_from_scaled(np.full((128, 72, 3), 255, np.uint8), tall)
    assert np.all(tensor[0, :, :28] == -1.0) and np.all(tensor[0, :, 100:] == -1.0)
    assert np.all(tensor[0, :, 28:100] == 1.0)
    with pytest.raises(ValueError):
        detector.tensor_from_scaled(picture, tall)


def test_input_made_in_another_thread_gives_the_same_faces(shared_dir: Path) -> None:
    """The pipeline's split (input_tensor in the capture thread, detect_tensor in inference) must
    equal detect_scaled, and a new input must not share the detector's buffer."""
    detector = BlazeFaceDetector("short")
    rgb = _load_rgb(shared_dir, "grace_hopper.bmp")
    box = detector.letterbox(rgb.shape[1], rgb.shape[0])
    scaled = np.asarray(Image.fromarray(rgb).resize((box.scaled_width, box.scaled_height), Image.BILINEAR))
    tensor = detector.input_tensor(scaled, box)
    assert np.array_equal(tensor, detector.tensor_from_scaled(scaled, box))
    assert not np.shares_memory(tensor, detector.tensor_from_scaled(scaled, box))
    expected, got = detector.detect_scaled(scaled, box), detector.detect_tensor(tensor, box)
    assert len(got) == len(expected) == 1
    assert np.array_equal(got.boxes, expected.boxes) and np.array_equal(got.keypoints, expected.keypoints)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("value", [0, 128])
def test_blank_picture_has_no_faces(variant: str, value: int) -> None:
    detector = BlazeFaceDetector(variant)
    detections = detector.detect_image(np.full((480, 640, 3), value, np.uint8))
    assert len(detections) == 0
    assert detections.boxes.shape == (0, 4) and detections.keypoints.shape == (0, 6, 2)


def test_weighted_nms_merges_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    keypoints[1] += 3.0
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    out_boxes, out_keypoints, out_scores = weighted_nms(boxes, keypoints, scores, 0.3)
    np.testing.assert_allclose(out_scores, [0.9, 0.7])
    np.testing.assert_allclose(out_boxes[0], [0.6, 0, 10.6, 10], rtol=1e-6)  # (0.6*0 + 0.9*1) / 1.5
    np.testing.assert_allclose(out_keypoints[0], np.full((6, 2), 1.8), rtol=1e-6)
    np.testing.assert_allclose(out_boxes[1], boxes[2])


def test_model_path_variants() -> None:
    assert blazeface_model_path("short").name == "face_detection_short_range.tflite"
    assert blazeface_model_path("full").name == "face_detection_full_range.tflite"
    assert blazeface_model_path("short").is_file()


def test_runtime_exposes_model_details() -> None:
    model = TfliteModel(blazeface_model_path("short"))
    assert model.input_shape == (1, 128, 128, 3)
    assert model.input_dtype == np.float32
    assert model.input_quantization == (0.0, 0)
    outputs = model.invoke(np.zeros(model.input_shape, np.float32))
    assert [o.shape for o in outputs] == [tuple(d["shape"]) for d in model.outputs]
    again = model.invoke(np.ones(model.input_shape, np.float32))
    assert not np.array_equal(outputs[0], again[0]), "outputs must be copies, not live buffers"


def test_unknown_variant_is_model_error() -> None:
    with pytest.raises(ModelError, match=r"'short'.*'full'"):
        blazeface_model_path("medium")
    with pytest.raises(ModelError, match="medium"):
        BlazeFaceDetector("medium")


def test_missing_model_is_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "nope.tflite"
    with pytest.raises(ModelError, match=re.escape("nope.tflite does not exist")):
        TfliteModel(missing)
    with pytest.raises(ModelError, match=re.escape("nope.tflite")):
        BlazeFaceDetector("short", model_path=missing)


def test_text_file_is_model_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tflite"
    fake.write_text("this is not a model\n")
    with pytest.raises(ModelError, match=re.escape("fake.tflite is not a TFLite model")) as info:
        TfliteModel(fake)
    assert "\n" not in str(info.value)


def test_wrong_model_is_model_error(shared_dir: Path) -> None:
    mobilenet = shared_dir / "models" / "mobilenet_v1_0.25_128_quant.tflite"
    with pytest.raises(ModelError, match=re.escape("mobilenet_v1_0.25_128_quant.tflite")):
        BlazeFaceDetector("short", model_path=mobilenet)


def test_reference_covers_the_shared_photos(shared_dir: Path) -> None:
    covered = set(_reference_images())
    assert {"face.jpg", "grace_hopper.bmp", "cat.bmp"} <= covered
    assert all((shared_dir / "images" / name).is_file() for name in covered)
